using System.Net;
using System.Net.Sockets;

namespace VmPortal.Network;

/// <summary>
/// One UDP flow through the NAT: a guest's (address, port) talking to one destination, carried by an ordinary host
/// socket connected to where the outbound policy maps it (10.0.2.2:PORT → 127.0.0.1:PORT under loopback). Datagrams
/// from the guest are sent on the socket; datagrams the socket receives (the kernel lets through only those from the
/// connected peer) go to the guest from the address it sent to, split into IP fragments when they exceed one frame.
/// When the host answers "port unreachable" (ECONNREFUSED on the connected socket) the guest gets ICMP port
/// unreachable quoting its last datagram; other send errors drop the datagram silently (counted), as a router would.
/// The flow closes after <see cref="NetworkOptions.UdpIdleTimeout"/> without a datagram either way. Runs on the
/// network's event loop, except the receive loop, which posts back to it.
/// </summary>
internal sealed class NatUdpFlow
{
    private readonly UserNetwork _net;
    private readonly Socket _socket;
    private byte[] _quote = []; // the guest's last IP header + 8 bytes, quoted by ICMP errors
    private volatile bool _closed;

    public NatUdpFlow(UserNetwork net, ConnectionKey key, byte[] guestMac, IPEndPoint target)
    {
        _net = net;
        Key = key;
        GuestMac = guestMac;
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // a loopback destination is reached from a loopback address: nothing else of the host is involved
            if (IPAddress.IsLoopback(target.Address)) _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _socket.Connect(target); // UDP: only sets the peer, nothing is sent
        }
        catch (Exception)
        {
            _socket.Dispose();
            throw;
        }
        LastActiveMs = Environment.TickCount64;
        _ = ReceiveLoopAsync();
    }

    public ConnectionKey Key { get; }
    public byte[] GuestMac { get; }
    public long LastActiveMs { get; private set; }
    public long DatagramsToHost { get; private set; }
    public long DatagramsToGuest { get; private set; }

    /// <summary>A datagram from the guest: <paramref name="quote"/> is its IP header and the first 8 bytes after it.</summary>
    public void FromGuest(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> quote)
    {
        LastActiveMs = Environment.TickCount64;
        _quote = quote.ToArray();
        try
        {
            _socket.Send(payload);
            DatagramsToHost++;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // an earlier datagram was refused; this one still went (Linux reports the error once and sends)
            PortUnreachable();
        }
        catch (Exception)
        {
            _net.CountUdpDropped(); // no route, buffer full, …: dropped like a router would
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buf = new byte[65536];
        while (!_closed)
        {
            int n;
            try { n = await _socket.ReceiveAsync(buf, SocketFlags.None).ConfigureAwait(false); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                _net.Post(PortUnreachable);
                continue;
            }
            catch (Exception)
            {
                return; // closed
            }
            var data = buf.AsSpan(0, n).ToArray();
            _net.Post(() => ToGuest(data));
        }
    }

    private void ToGuest(byte[] data)
    {
        if (_closed) return;
        LastActiveMs = Environment.TickCount64;
        DatagramsToGuest++;
        var frame = Packets.Udp(GuestMac, _net.Options.GatewayMac, Key.RemoteIp, Key.RemotePort, Key.GuestIp, Key.GuestPort, data);
        foreach (var f in Packets.Fragment(frame)) _net.SendFrame(f);
    }

    /// <summary>ICMP destination unreachable (port) to the guest, from the address it sent to, as that host would.</summary>
    private void PortUnreachable()
    {
        if (_closed || _quote.Length == 0) return;
        _net.CountUdpPortUnreachable();
        _net.SendFrame(Packets.IcmpUnreachable(GuestMac, _net.Options.GatewayMac, Key.RemoteIp, Key.GuestIp, Packets.IcmpPortUnreachable, _quote));
    }

    public void Close()
    {
        if (_closed) return;
        _closed = true;
        _socket.Dispose();
    }
}
