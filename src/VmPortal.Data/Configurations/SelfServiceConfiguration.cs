using Microsoft.EntityFrameworkCore;
using VmPortal.Data.Entities;

namespace VmPortal.Data.Configurations;

/// <summary>Tables of tasks and groups (issue 12: self-service and automation).</summary>
internal static class SelfServiceConfiguration
{
    public static void Configure(ModelBuilder builder)
    {
        builder.Entity<PortalTask>(t =>
        {
            t.ToTable("tasks");
            t.HasKey(x => x.Id);
            t.Property(x => x.Type).HasMaxLength(64).IsRequired();
            t.Property(x => x.TargetType).HasMaxLength(32).IsRequired();
            t.Property(x => x.TargetId).HasMaxLength(100);
            t.Property(x => x.TargetName).HasMaxLength(256).IsRequired();
            t.Property(x => x.UserName).HasMaxLength(256).IsRequired();
            t.Property(x => x.Status).HasConversion<string>().HasMaxLength(16);
            t.Property(x => x.Message).HasMaxLength(1000).IsRequired();
            t.Property(x => x.Log).HasMaxLength(PortalTask.LogMaxLength).IsRequired();
            t.Property(x => x.ErrorTitle).HasMaxLength(200);
            t.Property(x => x.ErrorDetail).HasMaxLength(4000);
            t.HasIndex(x => new { x.UserId, x.CreatedAt });
            t.HasIndex(x => x.Status);
            t.HasIndex(x => new { x.TargetType, x.TargetId });
        });

        builder.Entity<UserGroup>(g =>
        {
            g.ToTable("user_groups");
            g.HasKey(x => x.Id);
            g.Property(x => x.Name).HasMaxLength(UserGroup.NameMaxLength).IsRequired();
            g.Property(x => x.NormalizedName).HasMaxLength(UserGroup.NameMaxLength).IsRequired();
            g.HasIndex(x => x.NormalizedName).IsUnique();
            g.Property(x => x.Description).HasMaxLength(UserGroup.DescriptionMaxLength).IsRequired();
        });

        builder.Entity<UserGroupMember>(m =>
        {
            m.ToTable("user_group_members");
            m.HasKey(x => new { x.GroupId, x.UserId });
            m.HasIndex(x => x.UserId);
            m.HasOne<UserGroup>().WithMany().HasForeignKey(x => x.GroupId).OnDelete(DeleteBehavior.Cascade);
            m.HasOne<PortalUser>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<TemplateGroup>(m =>
        {
            m.ToTable("template_groups");
            m.HasKey(x => new { x.TemplateId, x.GroupId });
            m.HasIndex(x => x.GroupId);
            m.HasOne<VmTemplate>().WithMany().HasForeignKey(x => x.TemplateId).OnDelete(DeleteBehavior.Cascade);
            m.HasOne<UserGroup>().WithMany().HasForeignKey(x => x.GroupId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<VmLease>(l =>
        {
            l.ToTable("vm_leases");
            l.HasKey(x => x.VmId);
            l.Property(x => x.SetByName).HasMaxLength(256).IsRequired();
            l.HasIndex(x => x.ExpiresAt);
            l.HasOne<VirtualMachine>().WithOne().HasForeignKey<VmLease>(x => x.VmId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<GroupQuota>(q =>
        {
            q.ToTable("group_quotas");
            q.HasKey(x => x.GroupId);
            q.HasOne<UserGroup>().WithOne().HasForeignKey<GroupQuota>(x => x.GroupId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}
