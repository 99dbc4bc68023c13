using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VmPortal.Network;

/// <summary>
/// The DNS server at the network's DNS address (10.0.2.3): answers A queries (one question, standard query). Under
/// the loopback and deny policies it answers only from the host's hosts file, and only names there whose address is
/// a loopback address — those resolve to the gateway, the guest's way to the host's loopback; nothing is sent to
/// any resolver. Under allow it asks the host's resolver. Other names get NXDOMAIN, other query types an empty
/// answer; malformed queries are ignored and counted.
/// </summary>
public sealed class DnsResponder
{
    private volatile NetworkOptions _options;
    private long _malformed;

    public DnsResponder(NetworkOptions options) => _options = options;

    /// <summary>The network's options (the outbound policy decides whether the host resolver is asked); replaceable live.</summary>
    public NetworkOptions Options { get => _options; set => _options = value; }

    public long MalformedQueries => Interlocked.Read(ref _malformed);

    /// <summary>Names of the hosts file with a loopback address (lower case).</summary>
    public static HashSet<string> LoopbackNames(string hostsFile)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(hostsFile)) return names;
        foreach (var raw in File.ReadAllLines(hostsFile))
        {
            var line = raw.Split('#')[0];
            var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2 || !IPAddress.TryParse(f[0], out var a) || !IPAddress.IsLoopback(a)) continue;
            foreach (var n in f.Skip(1)) names.Add(n.TrimEnd('.'));
        }
        return names;
    }

    /// <summary>The answer to one query (UDP payload), or null to stay silent.</summary>
    public async Task<byte[]?> AnswerAsync(byte[] q)
    {
        if (q.Length < 12 || (q[2] & 0x80) != 0 || (q[2] & 0x78) != 0 || BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(4)) != 1)
        {
            Interlocked.Increment(ref _malformed);
            return null;
        }
        int i = 12;
        var name = new StringBuilder();
        while (true)
        {
            if (i >= q.Length) { Interlocked.Increment(ref _malformed); return null; }
            int len = q[i++];
            if (len == 0) break;
            if (len > 63 || i + len > q.Length) { Interlocked.Increment(ref _malformed); return null; }
            if (name.Length > 0) name.Append('.');
            name.Append(Encoding.ASCII.GetString(q, i, len));
            i += len;
        }
        if (i + 4 > q.Length) { Interlocked.Increment(ref _malformed); return null; }
        ushort qtype = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(i));
        int questionEnd = i + 4;
        string n = name.ToString().TrimEnd('.');
        bool known;
        uint address = 0;
        if (_options.Outbound == OutboundPolicy.Allow)
        {
            IPAddress[] found;
            try { found = await Dns.GetHostAddressesAsync(n, AddressFamily.InterNetwork); }
            catch (SocketException) { found = Array.Empty<IPAddress>(); }
            known = found.Length > 0;
            if (known) address = IPAddress.IsLoopback(found[0]) ? _options.Gateway : Packets.ToUInt(found[0]);
        }
        else
        {
            known = LoopbackNames(_options.HostsFile).Contains(n);
            address = _options.Gateway;
        }
        bool answer = known && qtype == 1;
        var r = new byte[questionEnd + (answer ? 16 : 0)];
        q.AsSpan(0, questionEnd).CopyTo(r);
        r[2] = (byte)(0x80 | (q[2] & 0x01)); // response, recursion desired copied
        r[3] = (byte)(0x80 | (known ? 0 : 3)); // recursion available; NXDOMAIN when unknown
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(6), (ushort)(answer ? 1 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(10), 0);
        if (answer)
        {
            var a = r.AsSpan(questionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(a, 0xC00C);
            BinaryPrimitives.WriteUInt16BigEndian(a[2..], 1);
            BinaryPrimitives.WriteUInt16BigEndian(a[4..], 1);
            BinaryPrimitives.WriteUInt32BigEndian(a[6..], 60);
            BinaryPrimitives.WriteUInt16BigEndian(a[10..], 4);
            BinaryPrimitives.WriteUInt32BigEndian(a[12..], address);
        }
        return r;
    }
}
