namespace VmPortal.Network;

/// <summary>A growable FIFO of bytes (the NAT's per-connection stream buffers). Not thread-safe.</summary>
internal sealed class ByteQueue
{
    private byte[] _buf = new byte[4096];
    private int _start, _count;

    public int Count => _count;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_start + _count + data.Length > _buf.Length)
        {
            if (_count + data.Length > _buf.Length)
            {
                var nb = new byte[Math.Max(_buf.Length * 2, _count + data.Length)];
                _buf.AsSpan(_start, _count).CopyTo(nb);
                _buf = nb;
            }
            else _buf.AsSpan(_start, _count).CopyTo(_buf);
            _start = 0;
        }
        data.CopyTo(_buf.AsSpan(_start + _count));
        _count += data.Length;
    }

    public ReadOnlySpan<byte> Peek(int offset, int length) => _buf.AsSpan(_start + offset, length);

    public void Discard(int n)
    {
        n = Math.Min(n, _count);
        _start += n;
        _count -= n;
        if (_count == 0) _start = 0;
    }

    public byte[] Take(int max)
    {
        int n = Math.Min(max, _count);
        var r = _buf.AsSpan(_start, n).ToArray();
        Discard(n);
        return r;
    }
}
