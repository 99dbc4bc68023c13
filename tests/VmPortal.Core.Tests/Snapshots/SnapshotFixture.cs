using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using VmPortal.Core.Disks;
using VmPortal.Core.Images;
using VmPortal.Core.Runtime;
using VmPortal.Core.Snapshots;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Data.Hosting;
using VmPortal.Emulator.Storage;

namespace VmPortal.Core.Tests.Snapshots;

/// <summary>
/// A real PostgreSQL (the portal's <see cref="EmbeddedPostgres"/> under /tmp, migrated) and a disk store in a
/// temporary directory, with a <see cref="SnapshotService"/> over them. VMs are rows with real qcow2 disks.
/// </summary>
public sealed class SnapshotFixture : IAsyncLifetime
{
    public const long MiB = 1024 * 1024;
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vmportal-snaptests-{Guid.NewGuid():N}");
    private EmbeddedPostgres? _pg;

    public IDbContextFactory<PortalDbContext> Db { get; private set; } = null!;
    public VmDiskStore Disks { get; private set; } = null!;
    public VmHost Host { get; } = new(new VmHostOptions { CapacityMiB = 1024 });
    public SnapshotService Snapshots { get; private set; } = null!;
    public Guid OwnerId { get; private set; }
    public string Root => _root;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        _pg = await EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions { DataDirectory = Path.Combine(_root, "postgres"), Database = "postgres" }, NullLogger.Instance);
        var database = "vmportal_snap_" + Guid.NewGuid().ToString("N")[..12];
        await _pg.EnsureDatabaseAsync(database);
        var options = new DbContextOptionsBuilder<PortalDbContext>().UseNpgsql(_pg.ConnectionStringFor(database)).Options;
        Db = new Factory(options);
        await using (var db = Db.CreateDbContext())
        {
            await db.Database.MigrateAsync();
            var user = new PortalUser { UserName = "snap-owner", NormalizedUserName = "SNAP-OWNER", SecurityStamp = Guid.NewGuid().ToString() };
            db.Users.Add(user);
            await db.SaveChangesAsync();
            OwnerId = user.Id;
        }
        var images = new ImageCatalog(Options.Create(new ImageStoreOptions { BuiltInPath = Path.Combine(_root, "builtin"), StorePath = Path.Combine(_root, "images") }));
        Disks = new VmDiskStore(Options.Create(new DiskStoreOptions { StorePath = Path.Combine(_root, "disks") }), images);
        Snapshots = new SnapshotService(Db, Disks, Host, TimeProvider.System);
    }

    public async Task DisposeAsync()
    {
        Host.Dispose();
        if (_pg is not null) await _pg.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>A stopped VM with one qcow2 disk of <paramref name="sizeMiB"/> over a raw base image holding "BASE" at 0.</summary>
    public async Task<VirtualMachine> NewVmAsync(string name, int sizeMiB = 16)
    {
        var vm = new VirtualMachine(OwnerId, name, DateTimeOffset.UtcNow);
        var disk = new VmDisk { Id = Guid.CreateVersion7(), SizeMiB = sizeMiB };
        disk.File = $"disk-{disk.Id:N}.qcow2";
        vm.Disks.Add(disk);
        Directory.CreateDirectory(Disks.VmDirectory(vm.Id));
        string basePath = Path.Combine(_root, $"base-{vm.Id:N}.raw");
        using (var fs = new FileStream(basePath, FileMode.Create)) { fs.SetLength(sizeMiB * MiB); fs.Write("BASE"u8); }
        DiskImageFile.CreateQcow2(Disks.PathOf(vm.Id, disk), sizeMiB * MiB, basePath);
        await using var db = Db.CreateDbContext();
        db.VirtualMachines.Add(vm);
        await db.SaveChangesAsync();
        return vm;
    }

    public async Task<VirtualMachine> LoadVmAsync(Guid id)
    {
        await using var db = Db.CreateDbContext();
        return await db.VirtualMachines.AsNoTracking().SingleAsync(v => v.Id == id);
    }

    /// <summary>The VM's first disk as the guest sees it now (its active overlay).</summary>
    public async Task<string> ActiveDiskAsync(Guid vmId)
    {
        var vm = await LoadVmAsync(vmId);
        return Disks.PathOf(vmId, vm.Disks[0]);
    }

    /// <summary>Writes <paramref name="text"/> at <paramref name="offset"/> of the VM's disk, like a guest would.</summary>
    public async Task WriteAsync(Guid vmId, long offset, string text)
    {
        using var img = DiskImageFile.Open(await ActiveDiskAsync(vmId), readOnly: false);
        var data = new byte[512];
        System.Text.Encoding.ASCII.GetBytes(text).CopyTo(data, 0);
        ((DiskImageBase)img).WriteAt(offset, data);
        img.Flush();
    }

    /// <summary>Reads text at <paramref name="offset"/> through QEMU (the oracle): the whole chain converted to raw.</summary>
    public static string ReadWithQemu(string image, long offset, int length)
    {
        string raw = Path.Combine(Path.GetTempPath(), $"snapread-{Guid.NewGuid():N}.raw");
        try
        {
            Run("qemu-img", $"convert -U -O raw \"{image}\" \"{raw}\"");
            using var fs = File.OpenRead(raw);
            fs.Position = offset;
            var buf = new byte[length];
            fs.ReadExactly(buf);
            return System.Text.Encoding.ASCII.GetString(buf).TrimEnd('\0');
        }
        finally { File.Delete(raw); }
    }

    /// <summary><c>qemu-img check</c> of every qcow2 file in the VM's directory: each must be clean.</summary>
    public void AssertAllClean(Guid vmId)
    {
        foreach (var f in Directory.GetFiles(Disks.VmDirectory(vmId), "*.qcow2"))
        {
            var (code, output) = Run("qemu-img", $"check -U \"{f}\"", throwOnError: false);
            Assert.True(code == 0, $"qemu-img check {Path.GetFileName(f)}: exit {code}\n{output}");
            Assert.Contains("No errors were found", output);
        }
    }

    /// <summary>The files of <c>qemu-img info --backing-chain</c>, newest first.</summary>
    public static List<string> Chain(string image)
    {
        var (_, output) = Run("qemu-img", $"info -U --backing-chain --output=json \"{image}\"");
        var arr = System.Text.Json.Nodes.JsonNode.Parse(output)!.AsArray();
        return arr.Select(n => n!["filename"]!.GetValue<string>()).ToList();
    }

    public static (int Code, string Output) Run(string file, string args, bool throwOnError = true)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (throwOnError && p.ExitCode != 0) throw new InvalidOperationException($"{file} {args}: exit {p.ExitCode}\n{output}");
        return (p.ExitCode, output);
    }

    private sealed class Factory(DbContextOptions<PortalDbContext> options) : IDbContextFactory<PortalDbContext>
    {
        public PortalDbContext CreateDbContext() => new(options);
    }
}
