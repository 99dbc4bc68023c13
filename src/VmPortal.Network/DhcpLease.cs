namespace VmPortal.Network;

/// <summary>An address given to a client (by MAC): <see cref="Bound"/> after DHCPACK, offered only before.</summary>
public sealed record DhcpLease(string MacAddress, string Address, string? HostName, DateTimeOffset Expires, bool Bound);
