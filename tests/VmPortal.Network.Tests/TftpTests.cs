using System.Buffers.Binary;
using System.Text;

namespace VmPortal.Network.Tests;

public class TftpTests
{
    private static byte[] Request(ushort op, string file, params string[] options)
    {
        var l = new List<byte> { 0, (byte)op };
        foreach (var s in new[] { file, "octet" }.Concat(options)) { l.AddRange(Encoding.ASCII.GetBytes(s)); l.Add(0); }
        return l.ToArray();
    }

    private static async Task<(ushort SrcPort, byte[] Payload)> NextUdp(FakeGuest g, ushort port)
    {
        var f = await g.WaitFor(x => Ipv4View.TryParse(x, out var v) && v.Protocol == Packets.ProtoUdp && BinaryPrimitives.ReadUInt16BigEndian(v.Payload[2..]) == port);
        Ipv4View.TryParse(f, out var ip);
        var u = ip.Payload;
        return (BinaryPrimitives.ReadUInt16BigEndian(u), u[8..].ToArray());
    }

    [Fact]
    public async Task FilesAreServedInBlocksWithNegotiatedOptionsAndNothingOutsideTheRoot()
    {
        string root = Directory.CreateTempSubdirectory("tftp").FullName;
        var content = new byte[5000];
        new Random(3).NextBytes(content);
        File.WriteAllBytes(Path.Combine(root, "boot.ipxe"), content);
        try
        {
            var sw = new VirtualSwitch("t");
            using var net = new UserNetwork(sw, new NetworkOptions { TftpRoot = root, BootFile = "boot.ipxe" });
            var g = new FakeGuest(sw, 1);
            g.SendUdp(FakeGuest.Gateway, 2000, 69, Request(1, "boot.ipxe", "blksize", "1400", "tsize", "0"));
            var (tid, oack) = await NextUdp(g, 2000);
            Assert.Equal(6, oack[1]);
            string opts = Encoding.ASCII.GetString(oack, 2, oack.Length - 2);
            Assert.Contains("blksize\01400\0", opts);
            Assert.Contains("tsize\05000\0", opts);
            var got = new List<byte>();
            for (ushort block = 0; ; block++)
            {
                g.SendUdp(FakeGuest.Gateway, 2000, tid, new byte[] { 0, 4, (byte)(block >> 8), (byte)block });
                if (block > 0 && got.Count == content.Length) break;
                var (_, data) = await NextUdp(g, 2000);
                // a slow host may see the server retransmit its OACK before our first ACK arrived: skip repeats
                while (data[1] == 6 && block == 0) (_, data) = await NextUdp(g, 2000);
                Assert.Equal(3, data[1]);
                Assert.Equal(block + 1, BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(2)));
                got.AddRange(data.AsSpan(4).ToArray());
                if (data.Length - 4 < 1400) { g.SendUdp(FakeGuest.Gateway, 2000, tid, new byte[] { 0, 4, (byte)((block + 1) >> 8), (byte)(block + 1) }); break; }
            }
            Assert.Equal(content, got.ToArray());

            foreach (var bad in new[] { "../../etc/passwd", "/etc/passwd", "missing.bin" })
            {
                g.SendUdp(FakeGuest.Gateway, 2001, 69, Request(1, bad));
                var (_, err) = await NextUdp(g, 2001);
                Assert.Equal(5, err[1]);
            }
            g.SendUdp(FakeGuest.Gateway, 2002, 69, Request(2, "upload.bin"));
            Assert.Equal(5, (await NextUdp(g, 2002)).Payload[1]);
            Assert.False(File.Exists(Path.Combine(root, "upload.bin")));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void DhcpNamesTheBootFileAndTheNextServer()
    {
        var dhcp = new DhcpServer(new NetworkOptions { BootFile = "boot.ipxe" });
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6;
        Frames.Mac(1).CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        m[240] = 53; m[241] = 1; m[242] = DhcpServer.Discover; m[243] = 255;
        var offer = dhcp.Handle(m)!;
        Assert.Equal(0x0A00_0202u, BinaryPrimitives.ReadUInt32BigEndian(offer.Message.AsSpan(20)));
        Assert.Equal("boot.ipxe", Encoding.ASCII.GetString(offer.Message, 108, 9));
    }
}
