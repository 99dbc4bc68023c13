using System.Net;
using System.Net.Sockets;

namespace VmPortal.Benchmarks.Console.PortalBench;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of the portal that counts the bytes going from the portal to its clients:
/// exactly what the console costs on the wire (WebSocket framing, SignalR and MessagePack included). Only the
/// benchmark's SignalR viewers connect through it, so the count is console traffic alone.
/// </summary>
public sealed class CountingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private long _downstreamBytes;

    public CountingProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _ = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Bytes sent by the portal to the clients since the last <see cref="Reset"/>.</summary>
    public long DownstreamBytes => Interlocked.Read(ref _downstreamBytes);

    public void Reset() => Interlocked.Exchange(ref _downstreamBytes, 0);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _targetPort);
                var up = CopyAsync(client.GetStream(), server.GetStream(), count: false);
                var down = CopyAsync(server.GetStream(), client.GetStream(), count: true);
                await Task.WhenAny(up, down);
            }
            catch (IOException) { }
            catch (SocketException) { }
        }
    }

    private async Task CopyAsync(NetworkStream from, NetworkStream to, bool count)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer, _stop.Token);
                if (n == 0) return;
                if (count) Interlocked.Add(ref _downstreamBytes, n);
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (IOException) { }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}
