using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using VmPortal.Data.Entities;

namespace VmPortal.Data;

/// <summary>The portal's database: Identity tables, VM definitions, API tokens, console share links and audit events.</summary>
public sealed class PortalDbContext(DbContextOptions<PortalDbContext> options)
    : IdentityDbContext<PortalUser, IdentityRole<Guid>, Guid>(options)
{
    public DbSet<VirtualMachine> VirtualMachines => Set<VirtualMachine>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<AuditEvent> AuditEvents => Set<AuditEvent>();
    public DbSet<ConsoleShare> ConsoleShares => Set<ConsoleShare>();
    public DbSet<VmTemplate> Templates => Set<VmTemplate>();
    public DbSet<UserQuota> UserQuotas => Set<UserQuota>();
    public DbSet<VirtualNetwork> Networks => Set<VirtualNetwork>();
    public DbSet<VmSnapshot> Snapshots => Set<VmSnapshot>();
    public DbSet<PortalTask> Tasks => Set<PortalTask>();
    public DbSet<UserGroup> Groups => Set<UserGroup>();
    public DbSet<UserGroupMember> GroupMembers => Set<UserGroupMember>();
    public DbSet<TemplateGroup> TemplateGroups => Set<TemplateGroup>();
    public DbSet<GroupQuota> GroupQuotas => Set<GroupQuota>();
    public DbSet<VmLease> Leases => Set<VmLease>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        Configurations.SelfServiceConfiguration.Configure(builder);

        builder.Entity<VirtualMachine>(vm =>
        {
            vm.ToTable("virtual_machines");
            vm.HasKey(x => x.Id);
            vm.Property(x => x.Name).HasMaxLength(VirtualMachine.NameMaxLength).IsRequired();
            vm.Property(x => x.NormalizedName).HasMaxLength(VirtualMachine.NameMaxLength).IsRequired();
            vm.Property(x => x.Description).HasMaxLength(VirtualMachine.DescriptionMaxLength).IsRequired();
            vm.Property(x => x.CdromImageId).HasMaxLength(200);
            vm.Property(x => x.State).HasConversion<string>().HasMaxLength(16);
            vm.Property(x => x.StateReason).HasMaxLength(VirtualMachine.StateReasonMaxLength);
            vm.Property(x => x.BootOrder).HasConversion(
                v => string.Join(',', v.Select(d => d.ToString().ToLowerInvariant())),
                s => s.Length == 0 ? new List<BootDevice>() : s.Split(',', StringSplitOptions.None).Select(p => Enum.Parse<BootDevice>(p, true)).ToList(),
                new Microsoft.EntityFrameworkCore.ChangeTracking.ValueComparer<List<BootDevice>>(
                    (a, b) => a!.SequenceEqual(b!), v => v.Aggregate(0, (h, d) => HashCode.Combine(h, d)), v => v.ToList()))
                .HasMaxLength(100);
            vm.Property(x => x.Version).IsRowVersion();
            vm.HasIndex(x => new { x.OwnerId, x.NormalizedName }).IsUnique();
            vm.HasOne(x => x.Owner).WithMany().HasForeignKey(x => x.OwnerId).OnDelete(DeleteBehavior.Restrict);
            vm.OwnsMany(x => x.Disks, d =>
            {
                d.ToJson("disks");
            });
            vm.OwnsOne(x => x.Nic, n =>
            {
                n.ToJson("nic");
                n.OwnsMany(x => x.PortForwards);
            });
            vm.OwnsOne(x => x.CloudInit, c =>
            {
                c.ToJson("cloud_init");
            });
        });

        builder.Entity<VmSnapshot>(s =>
        {
            s.ToTable("vm_snapshots");
            s.HasKey(x => x.Id);
            s.Property(x => x.Name).HasMaxLength(VmSnapshot.NameMaxLength).IsRequired();
            s.Property(x => x.Description).HasMaxLength(VmSnapshot.DescriptionMaxLength).IsRequired();
            s.Property(x => x.StateFile).HasMaxLength(200);
            s.HasIndex(x => new { x.VmId, x.Name }).IsUnique();
            s.HasOne<VirtualMachine>().WithMany().HasForeignKey(x => x.VmId).OnDelete(DeleteBehavior.Cascade);
            s.HasOne<VmSnapshot>().WithMany().HasForeignKey(x => x.ParentId).OnDelete(DeleteBehavior.NoAction); // checked at statement end: a VM's cascade removes a whole tree
            s.OwnsMany(x => x.Layers, l => l.ToJson("layers"));
        });

        builder.Entity<VmTemplate>(t =>
        {
            t.ToTable("vm_templates");
            t.HasKey(x => x.Id);
            t.Property(x => x.Name).HasMaxLength(VmTemplate.NameMaxLength).IsRequired();
            t.Property(x => x.NormalizedName).HasMaxLength(VmTemplate.NameMaxLength).IsRequired();
            t.HasIndex(x => x.NormalizedName).IsUnique();
            t.Property(x => x.Description).HasMaxLength(VmTemplate.DescriptionMaxLength).IsRequired();
            t.Property(x => x.Os).HasMaxLength(100).IsRequired();
            t.Property(x => x.Icon).HasMaxLength(32).IsRequired();
            t.Property(x => x.DiskImageId).HasMaxLength(200);
            t.Property(x => x.CdromImageId).HasMaxLength(200);
            t.Property(x => x.HostnamePattern).HasMaxLength(63).IsRequired();
            t.Property(x => x.DefaultUser).HasMaxLength(32).IsRequired();
            t.Property(x => x.Network).HasMaxLength(63).IsRequired();
            t.Property(x => x.BootOrder).HasConversion(
                v => string.Join(',', v.Select(d => d.ToString().ToLowerInvariant())),
                s => s.Length == 0 ? new List<BootDevice>() : s.Split(',', StringSplitOptions.None).Select(p => Enum.Parse<BootDevice>(p, true)).ToList(),
                new Microsoft.EntityFrameworkCore.ChangeTracking.ValueComparer<List<BootDevice>>(
                    (a, b) => a!.SequenceEqual(b!), v => v.Aggregate(0, (h, d) => HashCode.Combine(h, d)), v => v.ToList()))
                .HasMaxLength(100);
            t.Property(x => x.Version).IsRowVersion();
        });

        builder.Entity<VirtualNetwork>(n =>
        {
            n.ToTable("networks");
            n.HasKey(x => x.Id);
            n.Property(x => x.Name).HasMaxLength(VirtualNetwork.NameMaxLength).IsRequired();
            n.Property(x => x.NormalizedName).HasMaxLength(VirtualNetwork.NameMaxLength).IsRequired();
            n.HasIndex(x => x.NormalizedName).IsUnique();
            n.Property(x => x.Mode).HasConversion<string>().HasMaxLength(16);
            n.Property(x => x.Outbound).HasConversion<string>().HasMaxLength(16);
            n.Property(x => x.Subnet).HasMaxLength(18).IsRequired();
            n.Property(x => x.Gateway).HasMaxLength(15).IsRequired();
            n.Property(x => x.Dns).HasMaxLength(15).IsRequired();
            n.Property(x => x.DhcpStart).HasMaxLength(15).IsRequired();
            n.Property(x => x.DhcpEnd).HasMaxLength(15).IsRequired();
            n.Property(x => x.Version).IsRowVersion();
        });

        builder.Entity<UserQuota>(q =>
        {
            q.ToTable("user_quotas");
            q.HasKey(x => x.UserId);
            q.HasOne<PortalUser>().WithOne().HasForeignKey<UserQuota>(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<ApiToken>(t =>
        {
            t.ToTable("api_tokens");
            t.HasKey(x => x.Id);
            t.Property(x => x.Name).HasMaxLength(100).IsRequired();
            t.Property(x => x.Prefix).HasMaxLength(16).IsRequired();
            t.Property(x => x.Hash).HasMaxLength(64).IsRequired();
            t.Property(x => x.Scopes).HasMaxLength(200).IsRequired().HasDefaultValue("");
            t.Property(x => x.LastUsedAddress).HasMaxLength(64);
            t.HasIndex(x => x.Hash).IsUnique();
            t.HasIndex(x => x.UserId);
            t.HasOne(x => x.User).WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<ConsoleShare>(s =>
        {
            s.ToTable("console_shares");
            s.HasKey(x => x.Id);
            s.Property(x => x.TokenHash).HasMaxLength(64).IsRequired();
            s.Property(x => x.Prefix).HasMaxLength(16).IsRequired();
            s.Property(x => x.Label).HasMaxLength(ConsoleShare.LabelMaxLength).IsRequired();
            s.Property(x => x.CreatedByName).HasMaxLength(256).IsRequired();
            s.HasIndex(x => x.TokenHash).IsUnique();
            s.HasIndex(x => x.VmId);
            s.HasOne(x => x.Vm).WithMany().HasForeignKey(x => x.VmId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<AuditEvent>(a =>
        {
            a.ToTable("audit_events");
            a.HasKey(x => x.Id);
            a.Property(x => x.UserName).HasMaxLength(256);
            a.Property(x => x.Action).HasMaxLength(64);
            a.Property(x => x.TargetType).HasMaxLength(64);
            a.Property(x => x.TargetId).HasMaxLength(100);
            a.Property(x => x.Details).HasMaxLength(2000);
            a.HasIndex(x => x.At);
        });
    }
}
