using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;

namespace VmPortal.Web.Hubs;

/// <summary>
/// The joined console connections: per connection its VM, its <see cref="ConsoleViewer"/> and the pump task that
/// copies the viewer's messages to that connection. A slow connection makes its SendAsync slow, so its viewer merges
/// frames meanwhile; the VM and the other viewers never wait.
/// </summary>
public sealed class ConsoleConnections(IHubContext<ConsoleHub> hub, ILogger<ConsoleConnections> log)
{
    public sealed record Connection(HostedVm Vm, ConsoleViewer Viewer, Task Pump);

    private readonly ConcurrentDictionary<string, Connection> connections = new();

    public int Count => connections.Count;

    public void Start(string connectionId, HostedVm vm, ConsoleViewer viewer)
    {
        Stop(connectionId); // joining again replaces the previous viewer
        var task = Task.Run(async () =>
        {
            var client = hub.Clients.Client(connectionId);
            try
            {
                await foreach (var m in viewer.Reader.ReadAllAsync())
                    await client.SendAsync(m.Method, m.Payload);
            }
            catch (Exception e) { log.LogDebug(e, "console pump for {Connection} ended", connectionId); }
        });
        connections[connectionId] = new Connection(vm, viewer, task);
    }

    public Connection? Get(string connectionId) => connections.TryGetValue(connectionId, out var c) ? c : null;

    public Connection? Stop(string connectionId)
    {
        if (!connections.TryRemove(connectionId, out var c)) return null;
        c.Viewer.Dispose(); // completes the reader, ending the pump
        return c;
    }
}
