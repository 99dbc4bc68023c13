using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Networks;

/// <summary>
/// Networks as admin-managed objects: stored in <c>networks</c>, live in <see cref="NetworkHost"/>. Everyone signed
/// in lists them (to pick one for a NIC), but a user sees only the leases and switch ports of their own VMs; admins
/// see all and create, replace and delete. A network with running VMs changes its kind (NAT/isolated), outbound policy,
/// DHCP on/off and DHCP range live (running guests keep their leased addresses until they renew); its subnet, gateway
/// and DNS address only while none runs (409 naming them); it becomes isolated only when no VM on it has port forwards
/// (409); one that a VM or template names cannot be deleted (409); subnets must not overlap (400). The built-in
/// <c>default</c> is fixed.
/// </summary>
public sealed class NetworkService(IDbContextFactory<PortalDbContext> dbFactory, NetworkHost host, AuditLog audit, TimeProvider clock)
{
    /// <summary>Loads the stored networks into the host (at start, before VMs start).</summary>
    public async Task LoadAsync(CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        foreach (var n in await db.Networks.AsNoTracking().ToListAsync(ct))
            host.Apply(NetworkDefinition.From(n));
    }

    public async Task<IReadOnlyList<NetworkDto>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        var all = host.List();
        var vms = await VmsAsync(caller, ct);
        return all.Select(n => Filter(caller, n, vms)).ToList();
    }

    public async Task<NetworkDto?> GetAsync(Caller caller, string name, CancellationToken ct = default) =>
        host.Get(name) is { } n ? Filter(caller, n, await VmsAsync(caller, ct)) : null;

    public async Task<OpResult<NetworkDto>> CreateAsync(Caller caller, NetworkSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<NetworkDto>.Conflict("Only administrators manage networks.");
        var (def, errors) = NetworkValidator.Validate(spec);
        if (def is null) return OpResult<NetworkDto>.Invalid(errors);
        if (host.Definitions.FirstOrDefault(d => string.Equals(d.Name, def.Name, StringComparison.OrdinalIgnoreCase)) is { } same)
            return OpResult<NetworkDto>.Conflict($"There is already a network named '{same.Name}'.");
        if (host.Definitions.FirstOrDefault(d => d.Overlaps(def)) is { } clash)
            return OpResult<NetworkDto>.Invalid("subnet", $"{def.Cidr} overlaps network '{clash.Name}' ({clash.Cidr}).");

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var entity = new VirtualNetwork(def.Name, clock.GetUtcNow());
        def.CopyTo(entity);
        db.Networks.Add(entity);
        audit.Add(db, caller.UserId, caller.UserName, "network.create", "network", def.Name, Summary(def));
        try { await db.SaveChangesAsync(ct); }
        catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return OpResult<NetworkDto>.Conflict($"There is already a network named '{def.Name}'.");
        }
        host.Apply(def);
        return OpResult<NetworkDto>.Ok(host.Get(def.Name)!);
    }

    public async Task<OpResult<NetworkDto>> UpdateAsync(Caller caller, string name, NetworkSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<NetworkDto>.Conflict("Only administrators manage networks.");
        if (host.Definition(name) is not { } current) return OpResult<NetworkDto>.NotFound($"Network '{name}' not found.");
        if (current.BuiltIn) return OpResult<NetworkDto>.Conflict($"The built-in network '{name}' cannot be changed.");
        spec.Name ??= name;
        if (!string.Equals(spec.Name, name, StringComparison.Ordinal))
            return OpResult<NetworkDto>.Invalid("name", "A network cannot be renamed (VMs refer to it by name); create a new one.");
        var (def, errors) = NetworkValidator.Validate(spec);
        if (def is null) return OpResult<NetworkDto>.Invalid(errors);
        if (host.Definitions.FirstOrDefault(d => d.Name != name && d.Overlaps(def)) is { } clash)
            return OpResult<NetworkDto>.Invalid("subnet", $"{def.Cidr} overlaps network '{clash.Name}' ({clash.Cidr}).");
        if (def == current) return OpResult<NetworkDto>.Ok(host.Get(name)!);
        if (NetworkHost.FixedWhileRunning(current, def) is { Count: > 0 } fixedFields && await RunningVmNamesAsync(name, ct) is { Count: > 0 } running)
            return OpResult<NetworkDto>.Conflict(FixedWhileRunningMessage(name, fixedFields, running));
        if (current.Nat && !def.Nat && await VmsWithForwardsAsync(name, ct) is { Count: > 0 } forwarding)
            return OpResult<NetworkDto>.Conflict($"Network '{name}' cannot become isolated while VMs on it have port forwards " +
                $"({string.Join(", ", forwarding)}): an isolated network has none. Remove their port forwards first.");

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var entity = await db.Networks.FirstOrDefaultAsync(n => n.Name == name, ct);
        if (entity is null) return OpResult<NetworkDto>.NotFound($"Network '{name}' not found.");
        def.CopyTo(entity);
        entity.Touch(clock.GetUtcNow());
        audit.Add(db, caller.UserId, caller.UserName, "network.update", "network", name, $"{Summary(current)} -> {Summary(def)}");
        await db.SaveChangesAsync(ct);
        try { host.Apply(def); }
        catch (InvalidOperationException e)
        {
            // a VM started between the check and now: the stored settings go back to what runs
            current.CopyTo(entity);
            await db.SaveChangesAsync(ct);
            return OpResult<NetworkDto>.Conflict(NetworkHost.FixedWhileRunning(current, def) is { Count: > 0 } f
                ? FixedWhileRunningMessage(name, f, await RunningVmNamesAsync(name, ct)) : e.Message);
        }
        return OpResult<NetworkDto>.Ok(host.Get(name)!);
    }

    /// <summary>Why <paramref name="fixedFields"/> cannot change now, naming the running VMs.</summary>
    private static string FixedWhileRunningMessage(string name, IReadOnlyList<string> fixedFields, IReadOnlyList<string> running) =>
        $"Network '{name}' is in use by running VMs ({string.Join(", ", running)}): its {string.Join(", ", fixedFields)} cannot change " +
        "while they run, since their guests keep the old addresses from their DHCP leases and would lose the gateway and DNS server " +
        "at once; stop them first. The kind, outbound policy, DHCP on/off and DHCP range change live.";

    public async Task<OpResult<bool>> DeleteAsync(Caller caller, string name, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<bool>.Conflict("Only administrators manage networks.");
        if (host.Definition(name) is not { } current) return OpResult<bool>.NotFound($"Network '{name}' not found.");
        if (current.BuiltIn) return OpResult<bool>.Conflict($"The built-in network '{name}' cannot be deleted.");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var users = await db.VirtualMachines.Where(v => v.Nic.Network == name).Select(v => v.Name).Take(5).ToListAsync(ct);
        if (users.Count > 0) return OpResult<bool>.Conflict($"Network '{name}' is in use by VMs ({string.Join(", ", users)}); move their NICs to another network first.");
        var templates = await db.Templates.Where(t => t.Network == name).Select(t => t.Name).Take(5).ToListAsync(ct);
        if (templates.Count > 0) return OpResult<bool>.Conflict($"Network '{name}' is used by templates ({string.Join(", ", templates)}).");
        if (host.ConnectedVms(name).Count > 0) return OpResult<bool>.Conflict($"Network '{name}' has running VMs.");
        var entity = await db.Networks.FirstOrDefaultAsync(n => n.Name == name, ct);
        if (entity is null) return OpResult<bool>.NotFound($"Network '{name}' not found.");
        db.Networks.Remove(entity);
        audit.Add(db, caller.UserId, caller.UserName, "network.delete", "network", name, Summary(current));
        await db.SaveChangesAsync(ct);
        host.Remove(name);
        return OpResult<bool>.Ok(true);
    }

    /// <summary>VMs (running or not) whose NIC on <paramref name="network"/> has port forwards.</summary>
    private async Task<List<string>> VmsWithForwardsAsync(string network, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.VirtualMachines.Where(v => v.Nic.Network == network && v.Nic.PortForwards.Any()).OrderBy(v => v.Name)
            .Select(v => v.Name).Take(10).ToListAsync(ct);
    }

    private async Task<List<string>> RunningVmNamesAsync(string network, CancellationToken ct)
    {
        var ids = host.ConnectedVms(network);
        if (ids.Count == 0) return [];
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var names = await db.VirtualMachines.Where(v => ids.Contains(v.Id)).Select(v => v.Name).ToListAsync(ct);
        return names.Count > 0 ? names : ids.Select(i => i.ToString()).ToList();
    }

    private static string Summary(NetworkDefinition d) =>
        $"mode={(d.Nat ? "nat" : "isolated")} subnet={d.Cidr} dhcp={d.Dhcp} outbound={d.Outbound.ToString().ToLowerInvariant()}";

    private sealed record VmRef(Guid Id, string Name, string Mac);

    /// <summary>The VMs the caller may see (admins: all), by MAC, to name lease holders and filter what users see.</summary>
    private async Task<List<VmRef>> VmsAsync(Caller caller, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = caller.IsAdmin ? db.VirtualMachines : db.VirtualMachines.Where(v => v.OwnerId == caller.UserId);
        var rows = await q.AsNoTracking().Select(v => new { v.Id, v.Name, v.Nic.MacAddress }).ToListAsync(ct);
        return rows.Select(r => new VmRef(r.Id, r.Name, (r.MacAddress ?? "").ToLowerInvariant())).ToList();
    }

    private static NetworkDto Filter(Caller caller, NetworkDto n, List<VmRef> vms)
    {
        var byMac = vms.Where(v => v.Mac.Length > 0).GroupBy(v => v.Mac).ToDictionary(g => g.Key, g => g.First());
        var ids = vms.Select(v => v.Id).ToHashSet();
        var leases = n.Leases
            .Select(l => byMac.TryGetValue(l.MacAddress.ToLowerInvariant(), out var vm) ? l with { VmId = vm.Id, VmName = vm.Name } : l)
            .Where(l => caller.IsAdmin || l.VmId is not null).ToList();
        var ports = n.Ports.Where(p => caller.IsAdmin || p.VmId is { } id && ids.Contains(id)).ToList();
        return n with { Leases = leases, Ports = ports };
    }
}

/// <summary>Loads the stored networks when the portal starts (registered after the database initializer, before the VM runtime).</summary>
public sealed class NetworkStartup(IServiceProvider services) : IHostedService
{
    // resolved at start: the DbContext factory needs the database initializer to have run
    public Task StartAsync(CancellationToken cancellationToken) =>
        Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<NetworkService>(services).LoadAsync(cancellationToken);
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
