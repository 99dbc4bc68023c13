using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VmPortal.Network;

/// <summary>
/// One TCP connection through the NAT: the guest's side is a TCP state machine spoken in frames, the host's side an
/// ordinary socket. Guest-initiated: SYN → host connect → SYN-ACK (or RST when the host refuses) → established.
/// Port forward: the host accepted a connection → SYN to the guest → its SYN-ACK → ACK. Data: guest bytes in
/// sequence are ACKed and written to the socket (the window we advertise shrinks while they wait, so a slow host
/// reader stops the guest); socket bytes go to the guest in MSS-sized segments within the guest's window (reading
/// the socket pauses while too much waits: window full). FIN from the guest shuts the socket's send side (half
/// close) while host data still flows; end of stream from the host becomes our FIN. RST from the guest resets the
/// host socket; a host reset becomes RST to the guest. Lost segments to the guest (a full switch queue) are sent
/// again after a second without progress; a zero window is probed. Window scaling (RFC 7323) when the guest's SYN or
/// SYN-ACK offers it: we advertise up to <see cref="ReceiveCapacity"/> (scale <see cref="OurWindowShift"/>) and send
/// within the guest's scaled window. Guest data is acknowledged at once when <see cref="AckEveryBytes"/> wait (a
/// stretch ACK, like a GRO receiver's), on a FIN and on data out of order (duplicate ACKs for the guest's fast
/// retransmit), otherwise after <see cref="DelayedAckMs"/> unless data to the guest carries the ACK first.
/// Runs on the network's event loop only.
/// </summary>
internal sealed class NatTcpConnection
{
    public enum Phase { Connecting, SynSent, SynAckSent, Established, Closed }

    public const int ReceiveCapacity = 256 * 1024, ToGuestHighWater = 256 * 1024, HostChunk = 64 * 1024;
    /// <summary>Our window scale: 65535 × 2^3 covers <see cref="ReceiveCapacity"/>.</summary>
    public const int OurWindowShift = 3;
    /// <summary>
    /// At most this much unacknowledged data to the guest, whatever its (scaled) window says: about 90 full frames, well
    /// inside the switch port's queue (<see cref="VirtualSwitch.QueueLimitPerSource"/>, 256 frames), so a guest that is
    /// slow to drain its receive ring holds the burst in the queue instead of losing its tail.
    /// </summary>
    public const int MaxInFlightToGuest = 128 * 1024;
    private const long RetransmitMs = 1000;
    /// <summary>
    /// Guest data acknowledged at once when this much waits for an ACK. Every second segment (RFC 1122's delayed ACK,
    /// what this NAT did before) made the guest handle one ACK frame — an interrupt, an skb, tcp_ack — per ~2.9 KB
    /// it sent, and with ACKs that quick its Nagle sent the small writes of <c>nc</c> as ~1.1 KB segments: the
    /// sending guest's CPU was the limit of guest→host throughput. A Linux receiver with GRO acknowledges per
    /// aggregate (up to 64 KiB) the same way.
    /// </summary>
    public const int AckEveryBytes = 32 * 1024;
    /// <summary>Data below <see cref="AckEveryBytes"/> is acknowledged this long after it arrived (unless data to the guest carries the ACK).</summary>
    public const int DelayedAckMs = 2;

    private readonly UserNetwork _net;
    private readonly ByteQueue _toGuest = new(); // from _sndUna on
    private readonly ByteQueue _toHost = new();
    private readonly SemaphoreSlim _readPermit = new(1);
    private Socket? _socket;
    private uint _iss, _sndUna, _sndNxt, _rcvNxt, _ackSent;
    private int _sndWnd, _mss = 536;
    private int _sndShift, _rcvShift; // window scale of the guest's windows / of ours (0 unless both sides agreed)
    private bool _ackPending;
    private long _ackDue;
    private int _dupAcks;
    private bool _hostEof, _finSent, _finAcked, _guestFin, _hostShutdown, _hostSending, _readWaiting, _zeroWindowAdvertised;
    private long _lastProgressMs;

    public NatTcpConnection(UserNetwork net, ConnectionKey key, byte[] guestMac)
    {
        _net = net;
        Key = key;
        GuestMac = guestMac;
        _iss = (uint)Random.Shared.Next();
        _sndUna = _sndNxt = _iss;
        _lastProgressMs = Environment.TickCount64;
    }

    public ConnectionKey Key { get; }
    public byte[] GuestMac { get; }
    public Phase State { get; private set; }
    /// <summary>Opened by the guest (through the outbound policy), not by a port forward.</summary>
    public bool Outbound { get; private set; }

    /// <summary>Free receive space in bytes (what the window says, before scaling).</summary>
    private int FreeSpace => Math.Max(ReceiveCapacity - _toHost.Count, 0);
    private ushort AdvertisedWindow => (ushort)Math.Min(FreeSpace >> _rcvShift, 65535);

    /// <summary>The guest's window scale and ours, as negotiated (for tests and diagnostics).</summary>
    public (int Guest, int Ours) WindowShifts => (_sndShift, _rcvShift);

    // ---- opening -----------------------------------------------------------------------------------------

    /// <summary>The guest's SYN: connect to <paramref name="target"/> and answer once we know.</summary>
    public void StartOutbound(TcpSegment syn, IPEndPoint target)
    {
        State = Phase.Connecting;
        Outbound = true;
        _rcvNxt = syn.Seq + 1;
        _sndWnd = syn.Window; // never scaled in a SYN
        if (syn.Mss != 0) _mss = Math.Min(syn.Mss, (ushort)1460);
        if (syn.WindowScale >= 0) (_sndShift, _rcvShift) = (syn.WindowScale, OurWindowShift);
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = s;
        _ = ConnectAsync(s, target);
    }

    private async Task ConnectAsync(Socket s, IPEndPoint target)
    {
        bool ok;
        try { await s.ConnectAsync(target).ConfigureAwait(false); ok = true; }
        catch (Exception) { ok = false; }
        _net.Post(() => OnConnected(ok));
    }

    private void OnConnected(bool ok)
    {
        if (State != Phase.Connecting) return;
        if (!ok)
        {
            _net.CountHostRefused();
            SendToGuest(0, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, default, window: 0);
            Close(reset: false);
            return;
        }
        State = Phase.SynAckSent;
        SendSynAck();
        _sndNxt = _iss + 1;
    }

    /// <summary>A host connection accepted for a port forward: open the guest side with a SYN.</summary>
    public void StartForwarded(Socket accepted)
    {
        _socket = accepted;
        accepted.NoDelay = true;
        State = Phase.SynSent;
        SendSyn();
        _sndNxt = _iss + 1;
    }

    // ---- guest segments ----------------------------------------------------------------------------------

    public void OnGuestSegment(TcpSegment seg)
    {
        if (State == Phase.Closed) return;
        if (seg.Has(TcpFlags.Rst))
        {
            Close(reset: true);
            return;
        }
        if (State == Phase.Connecting) return; // a repeated SYN while the host connects
        if (State == Phase.SynSent)
        {
            if (seg.Has(TcpFlags.Syn) && seg.Has(TcpFlags.Ack) && seg.Ack == _iss + 1)
            {
                _rcvNxt = seg.Seq + 1;
                _sndUna = seg.Ack;
                _sndWnd = seg.Window; // never scaled in a SYN-ACK
                if (seg.Mss != 0) _mss = Math.Min(seg.Mss, (ushort)1460);
                // our SYN offered scaling; it is on only if the guest's SYN-ACK offers it too
                if (seg.WindowScale >= 0) (_sndShift, _rcvShift) = (seg.WindowScale, OurWindowShift);
                Established();
                SendAck();
            }
            return;
        }
        if (seg.Has(TcpFlags.Syn))
        {
            if (State == Phase.SynAckSent) SendSynAck();
            else SendAck();
            return;
        }
        if (!seg.Has(TcpFlags.Ack)) return;
        if (State == Phase.SynAckSent)
        {
            if (seg.Ack != _iss + 1) { SendToGuest(seg.Ack, 0, TcpFlags.Rst, default, window: 0); return; }
            Established();
        }
        // Acknowledgement and window.
        if (SeqGt(seg.Ack, _sndUna) && SeqLe(seg.Ack, _sndNxt))
        {
            int n = (int)(seg.Ack - _sndUna);
            if (_finSent && seg.Ack == _sndNxt) { _finAcked = true; n--; }
            _toGuest.Discard(n);
            _sndUna = seg.Ack;
            _lastProgressMs = Environment.TickCount64;
            _dupAcks = 0;
        }
        else if (seg.Ack == _sndUna && _sndNxt != _sndUna && seg.Payload.Length == 0 && !seg.Has(TcpFlags.Fin) && ++_dupAcks == 3)
        {
            // fast retransmit (RFC 5681): the third duplicate ACK says a segment was lost (a full switch queue);
            // go back to it now instead of after the retransmission timeout
            _sndNxt = _sndUna;
            _finSent = false;
            _lastProgressMs = Environment.TickCount64;
            _net.CountFastRetransmit();
        }
        _sndWnd = seg.Window << _sndShift;
        bool ack = false, ackNow = false;
        int len = seg.Payload.Length;
        if (len > 0)
        {
            if (seg.Seq == _rcvNxt && !_guestFin)
            {
                int take = Math.Min(len, ReceiveCapacity - _toHost.Count);
                if (take > 0)
                {
                    _toHost.Append(seg.Payload.AsSpan(0, take));
                    _rcvNxt += (uint)take;
                }
                if (take < len) len = -1; // the rest did not fit: the FIN (if any) is not ours yet
            }
            else
            {
                // a segment ahead of a lost one, or a resent one: acknowledge at once (RFC 5681 4.2), so the guest's
                // duplicate ACK count is exact and its fast retransmit fires
                if (SeqGt(seg.Seq, _rcvNxt)) _net.CountTcpOutOfOrder();
                else _net.CountTcpDuplicate();
                ackNow = true;
            }
            ack = true;
        }
        if (seg.Has(TcpFlags.Fin) && len >= 0 && seg.Seq + (uint)len == _rcvNxt && !_guestFin)
        {
            _guestFin = true;
            _rcvNxt++;
            ack = ackNow = true;
        }
        else if (seg.Has(TcpFlags.Fin)) ack = true;
        KickHostSend();
        TrySendToGuest();
        // Delayed ACK: at once after AckEveryBytes (a stretch ACK, as a receiver with GRO sends one per aggregate),
        // for a FIN and for data out of order; otherwise within DelayedAckMs, unless data to the guest carries it first.
        if (ack && State != Phase.Closed && (ackNow || (int)(_rcvNxt - _ackSent) >= AckEveryBytes)) SendAck();
        else if (ack && !_ackPending)
        {
            _ackPending = true;
            _ackDue = Stopwatch.GetTimestamp() + DelayedAckMs * Stopwatch.Frequency / 1000;
            _net.AckLater(this);
        }
        CheckDone();
    }

    /// <summary>
    /// Sends the delayed ACK this connection owes once it is due (<paramref name="now"/>: a <see cref="Stopwatch"/>
    /// timestamp); false while it still waits, true when nothing is owed any more (sent, or data carried it).
    /// </summary>
    public bool FlushAck(long now)
    {
        if (!_ackPending || State == Phase.Closed) { _ackPending = false; return true; }
        if (now < _ackDue) return false;
        SendAck();
        _ackPending = false;
        return true;
    }

    /// <summary>When the owed ACK is due (a <see cref="Stopwatch"/> timestamp), or long.MaxValue.</summary>
    public long AckDue => _ackPending ? _ackDue : long.MaxValue;

    private void Established()
    {
        State = Phase.Established;
        _lastProgressMs = Environment.TickCount64;
        _net.CountConnection();
        _ = ReadLoopAsync(_socket!);
    }

    // ---- host → guest ------------------------------------------------------------------------------------

    private async Task ReadLoopAsync(Socket s)
    {
        try
        {
            while (true)
            {
                await _readPermit.WaitAsync().ConfigureAwait(false);
                var buf = new byte[HostChunk];
                int n = await s.ReceiveAsync(buf, SocketFlags.None).ConfigureAwait(false);
                _net.Post(() => OnHostData(buf, n));
                if (n == 0) return;
            }
        }
        catch (Exception)
        {
            _net.Post(OnHostError);
        }
    }

    private void OnHostData(byte[] buf, int n)
    {
        if (State == Phase.Closed) return;
        if (n == 0) _hostEof = true;
        else _toGuest.Append(buf.AsSpan(0, n));
        TrySendToGuest();
        if (n > 0)
        {
            if (_toGuest.Count < ToGuestHighWater) _readPermit.Release();
            else _readWaiting = true;
        }
        CheckDone();
    }

    private void OnHostError()
    {
        if (State == Phase.Closed) return;
        SendToGuest(_sndNxt, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, default, window: 0);
        Close(reset: false);
    }

    private void TrySendToGuest(bool probe = false)
    {
        if (State != Phase.Established) return;
        while (true)
        {
            int inflight = (int)(_sndNxt - _sndUna) - (_finSent ? 1 : 0);
            int unsent = _toGuest.Count - inflight;
            int room = Math.Min(_sndWnd, MaxInFlightToGuest) - inflight;
            if (probe && room <= 0 && unsent > 0) { room = 1; probe = false; }
            if (unsent <= 0 || room <= 0 || _finSent) break;
            int n = Math.Min(Math.Min(_mss, unsent), room);
            SendToGuest(_sndNxt, _rcvNxt, TcpFlags.Ack | TcpFlags.Psh, _toGuest.Peek(inflight, n));
            _sndNxt += (uint)n;
            probe = false; // a probe is one byte into a closed window, never a byte beyond what an open one allowed
        }
        if (_hostEof && !_finSent && _toGuest.Count == (int)(_sndNxt - _sndUna))
        {
            SendToGuest(_sndNxt, _rcvNxt, TcpFlags.Fin | TcpFlags.Ack, default);
            _sndNxt++;
            _finSent = true;
        }
        if (_readWaiting && _toGuest.Count < ToGuestHighWater)
        {
            _readWaiting = false;
            _readPermit.Release();
        }
    }

    // ---- guest → host ------------------------------------------------------------------------------------

    private void KickHostSend()
    {
        if (_hostSending || State == Phase.Closed || _socket == null) return;
        if (_toHost.Count > 0)
        {
            _hostSending = true;
            var chunk = _toHost.Take(HostChunk);
            if (_zeroWindowAdvertised) SendAck(); // the window opened again
            _ = SendToHostAsync(_socket, chunk);
        }
        else if (_guestFin && !_hostShutdown)
        {
            _hostShutdown = true;
            try { _socket.Shutdown(SocketShutdown.Send); } catch (Exception) { /* the host already went away */ }
        }
    }

    private async Task SendToHostAsync(Socket s, byte[] chunk)
    {
        try
        {
            int sent = 0;
            while (sent < chunk.Length) sent += await s.SendAsync(chunk.AsMemory(sent), SocketFlags.None).ConfigureAwait(false);
            _net.Post(() => { _hostSending = false; KickHostSend(); CheckDone(); });
        }
        catch (Exception)
        {
            _net.Post(OnHostError);
        }
    }

    // ---- housekeeping ------------------------------------------------------------------------------------

    /// <summary>Every ~100 ms: resend what the guest did not acknowledge for a second; probe a zero window.</summary>
    public void Tick(long nowMs)
    {
        if (State == Phase.SynSent && nowMs - _lastProgressMs > RetransmitMs)
        {
            _lastProgressMs = nowMs;
            SendSyn();
            return;
        }
        if (State != Phase.Established || nowMs - _lastProgressMs < RetransmitMs) return;
        _lastProgressMs = nowMs;
        if (_sndNxt != _sndUna)
        {
            _sndNxt = _sndUna; // go back: resend from the first unacknowledged byte
            _finSent = false;
            TrySendToGuest(probe: true);
        }
        else if (_toGuest.Count > 0 && _sndWnd == 0) TrySendToGuest(probe: true);
    }

    private void CheckDone()
    {
        if (State == Phase.Established && _guestFin && _finAcked && _toHost.Count == 0 && !_hostSending) Close(reset: false);
    }

    /// <summary>Resets both sides (RST to the guest and to the host): the network's policy no longer allows it.</summary>
    public void Abort()
    {
        if (State == Phase.Closed) return;
        if (State != Phase.Connecting) SendToGuest(_sndNxt, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, default, window: 0);
        else SendToGuest(0, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, default, window: 0);
        Close(reset: true);
    }

    /// <summary>Ends the connection; <paramref name="reset"/> makes the host socket send RST (the guest reset it).</summary>
    public void Close(bool reset)
    {
        if (State == Phase.Closed) return;
        State = Phase.Closed;
        var s = _socket;
        _socket = null;
        if (s != null)
        {
            try
            {
                if (reset) s.LingerState = new LingerOption(true, 0);
                s.Close();
            }
            catch (Exception) { /* already gone */ }
        }
        _net.Remove(this);
    }

    private void SendAck()
    {
        ushort w = AdvertisedWindow;
        _zeroWindowAdvertised = (w << _rcvShift) < _mss;
        SendToGuest(_sndNxt, _rcvNxt, TcpFlags.Ack, default, window: w);
    }

    /// <summary>Our SYN (port forward): MSS 1460 and our window scale offered; its window is never scaled.</summary>
    private void SendSyn() =>
        SendToGuest(_iss, 0, TcpFlags.Syn, default, mss: 1460, window: Math.Min(FreeSpace, 65535), windowScale: OurWindowShift);

    /// <summary>Our SYN-ACK: MSS 1460, and our window scale only when the guest's SYN offered scaling.</summary>
    private void SendSynAck() =>
        SendToGuest(_iss, _rcvNxt, TcpFlags.Syn | TcpFlags.Ack, default, mss: 1460, window: Math.Min(FreeSpace, 65535),
            windowScale: _rcvShift > 0 ? _rcvShift : -1);

    private void SendToGuest(uint seq, uint ack, TcpFlags flags, ReadOnlySpan<byte> payload, ushort mss = 0, int window = -1, int windowScale = -1)
    {
        ushort w = window < 0 ? AdvertisedWindow : (ushort)window;
        if ((flags & TcpFlags.Ack) != 0)
        {
            if (ack == _rcvNxt && w == AdvertisedWindow) _ackPending = false; // this segment is the ACK
            _ackSent = ack;
        }
        _net.SendFrame(Packets.Tcp(GuestMac, _net.Options.GatewayMac, Key.RemoteIp, Key.RemotePort, Key.GuestIp, Key.GuestPort,
            seq, ack, flags, w, payload, mss, windowScale));
    }

    private static bool SeqGt(uint a, uint b) => (int)(a - b) > 0;
    private static bool SeqLe(uint a, uint b) => (int)(a - b) <= 0;
}

/// <summary>A NAT connection's identity: the guest's address and port, and the address and port it talks to.</summary>
internal readonly record struct ConnectionKey(uint GuestIp, ushort GuestPort, uint RemoteIp, ushort RemotePort);
