using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;

namespace VmPortal.Web.Hubs;

/// <summary>
/// The joined console connections: per connection its VM, its <see cref="ConsoleViewer"/> and the pump task that
/// copies the viewer's messages to that connection. A slow connection makes its SendAsync slow, so its viewer merges
/// frames meanwhile; the VM and the other viewers never wait.
/// Connections that joined through a share link are cut off (a <c>Closed</c> message, then the connection is
/// aborted) as soon as the link is revoked or its expiry passes: <see cref="ConsoleShareService.ShareChanged"/> and a
/// one-second sweep.
/// </summary>
public sealed class ConsoleConnections : IDisposable
{
    public sealed class Connection(HostedVm vm, ConsoleViewer viewer, Task pump, HubCallerContext context, Guid? shareId, DateTimeOffset shareExpiresAt)
    {
        public HostedVm Vm { get; } = vm;
        public ConsoleViewer Viewer { get; } = viewer;
        public Task Pump { get; } = pump;
        public HubCallerContext Context { get; } = context;
        /// <summary>The share link this viewer came through (null for the owner or an admin).</summary>
        public Guid? ShareId { get; } = shareId;
        public DateTimeOffset ShareExpiresAt { get; set; } = shareExpiresAt;
        /// <summary>Input counts for the audit log (written when the connection ends; never the content).</summary>
        public int KeyEvents, CharsTyped, SpecialKeys, SerialBytes;
    }

    private readonly ConcurrentDictionary<string, Connection> connections = new();
    private readonly IHubContext<ConsoleHub> hub;
    private readonly ConsoleShareService shares;
    private readonly ILogger<ConsoleConnections> log;
    private readonly Timer sweep;

    public ConsoleConnections(IHubContext<ConsoleHub> hub, ConsoleShareService shares, ILogger<ConsoleConnections> log)
    {
        this.hub = hub;
        this.shares = shares;
        this.log = log;
        shares.ShareChanged += OnShareChanged;
        sweep = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public int Count => connections.Count;

    public void Start(HubCallerContext context, HostedVm vm, ConsoleViewer viewer, Guid? shareId = null, DateTimeOffset shareExpiresAt = default)
    {
        var connectionId = context.ConnectionId;
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
        connections[connectionId] = new Connection(vm, viewer, task, context, shareId, shareExpiresAt);
    }

    public Connection? Get(string connectionId) => connections.TryGetValue(connectionId, out var c) ? c : null;

    public Connection? Stop(string connectionId)
    {
        if (!connections.TryRemove(connectionId, out var c)) return null;
        c.Viewer.Dispose(); // completes the reader, ending the pump
        return c;
    }

    /// <summary>Ends every viewer of <paramref name="vmId"/> (the VM was deleted).</summary>
    public int EndVm(Guid vmId, string reason) =>
        End(c => c.Vm.Id == vmId, reason);

    private void OnShareChanged(Guid shareId, DateTimeOffset expiresAt)
    {
        if (expiresAt == DateTimeOffset.MinValue)
        {
            End(c => c.ShareId == shareId, "This share link was revoked.");
            return;
        }
        foreach (var c in connections.Values)
            if (c.ShareId == shareId) c.ShareExpiresAt = expiresAt;
        Sweep();
    }

    private void Sweep()
    {
        if (connections.IsEmpty) return;
        var now = shares.Now;
        End(c => c.ShareId is not null && c.ShareExpiresAt <= now, "This share link has expired.");
    }

    private int End(Func<Connection, bool> which, string reason)
    {
        int n = 0;
        foreach (var (id, c) in connections)
        {
            if (!which(c) || Stop(id) is null) continue;
            n++;
            log.LogInformation("console viewer {Connection} of VM {Vm} ended: {Reason}", id, c.Vm.Id, reason);
            _ = CloseAsync(id, c, reason);
        }
        return n;
    }

    private async Task CloseAsync(string connectionId, Connection c, string reason)
    {
        try
        {
            await c.Pump.WaitAsync(TimeSpan.FromSeconds(2));
            await hub.Clients.Client(connectionId).SendAsync(ConsoleMethods.Closed, new ConsoleClosed(reason))
                .WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException)
        {
            log.LogDebug("closing message to {Connection} not sent: {Message}", connectionId, e.Message);
        }
        finally
        {
            c.Context.Abort();
        }
    }

    public void Dispose()
    {
        shares.ShareChanged -= OnShareChanged;
        sweep.Dispose();
    }
}
