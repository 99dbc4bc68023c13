using VmPortal.Core.Networks;
using VmPortal.Network;

namespace VmPortal.Core.Tests.Networks;

/// <summary>Network settings: defaults filled in from the subnet, bad addresses named by field, overlaps.</summary>
public class NetworkValidatorTests
{
    [Fact]
    public void Defaults_follow_qemus_layout_and_small_subnets_start_dhcp_lower()
    {
        var (d, errors) = NetworkValidator.Validate(new NetworkSpec { Name = "lab", Subnet = "192.168.50.0/24" });
        Assert.Empty(errors);
        Assert.Equal("192.168.50.2", NetworkDefinition.Format(d!.Gateway));
        Assert.Equal("192.168.50.3", NetworkDefinition.Format(d.Dns));
        Assert.Equal("192.168.50.15", NetworkDefinition.Format(d.DhcpStart));
        Assert.Equal("192.168.50.254", NetworkDefinition.Format(d.DhcpEnd));
        Assert.True(d.Nat);
        Assert.Equal(OutboundPolicy.Loopback, d.Outbound);

        (d, errors) = NetworkValidator.Validate(new NetworkSpec { Name = "tiny", Subnet = "10.9.9.16/28", Mode = "isolated", Outbound = "allow" });
        Assert.Empty(errors);
        Assert.Equal("10.9.9.20", NetworkDefinition.Format(d!.DhcpStart));
        Assert.Equal("10.9.9.30", NetworkDefinition.Format(d.DhcpEnd));
        Assert.False(d.Nat);
        Assert.Equal(OutboundPolicy.Deny, d.Outbound); // nothing leaves an isolated network, whatever was asked
        Assert.False(d.ToOptions().Nat);
    }

    [Theory]
    [InlineData("10.1.2.0/24", "10.1.0.0/16", true)]
    [InlineData("10.1.2.0/24", "10.1.3.0/24", false)]
    [InlineData("10.0.2.128/25", "10.0.2.0/24", true)]
    [InlineData("172.16.0.0/12", "172.31.255.0/24", true)]
    [InlineData("172.16.0.0/12", "172.32.0.0/24", false)]
    public void Overlap_is_symmetric_and_uses_the_shorter_prefix(string a, string b, bool overlap)
    {
        var x = NetworkValidator.Validate(new NetworkSpec { Name = "a", Subnet = a }).Definition!;
        var y = NetworkValidator.Validate(new NetworkSpec { Name = "b", Subnet = b }).Definition!;
        Assert.Equal(overlap, x.Overlaps(y));
        Assert.Equal(overlap, y.Overlaps(x));
    }

    [Fact]
    public void Bad_addresses_and_ranges_are_named_by_field()
    {
        var (d, errors) = NetworkValidator.Validate(new NetworkSpec
        {
            Name = "lab", Subnet = "10.5.0.0/24", Gateway = "10.5.0.0", Dns = "10.5.0.2.1", DhcpStart = "10.5.0.200", DhcpEnd = "10.5.0.100",
        });
        Assert.Null(d);
        Assert.Contains("not a host address", errors["gateway"][0]);
        Assert.Contains("not an IPv4 address", errors["dns"][0]);
        Assert.Contains("ends before it starts", errors["dhcpEnd"][0]);
        (_, errors) = NetworkValidator.Validate(new NetworkSpec { Name = "lab", Subnet = "10.5.0.0/24", Gateway = "10", Dns = "10.5.0.255" });
        Assert.Contains("not an IPv4 address", errors["gateway"][0]); // "10" is not taken for 0.0.0.10
        Assert.Contains("not a host address", errors["dns"][0]);      // the broadcast address
        (_, errors) = NetworkValidator.Validate(new NetworkSpec { Name = "lab", Subnet = "224.1.0.0/16" });
        Assert.Contains("multicast", errors["subnet"][0]);
    }
}
