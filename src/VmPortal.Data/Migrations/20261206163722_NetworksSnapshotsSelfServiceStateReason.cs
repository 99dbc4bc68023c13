using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VmPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class NetworksSnapshotsSelfServiceStateReason : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "StateReason",
                table: "virtual_machines",
                type: "character varying(500)",
                maxLength: 500,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "LastUsedAddress",
                table: "api_tokens",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "RateLimitPerMinute",
                table: "api_tokens",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Scopes",
                table: "api_tokens",
                type: "character varying(200)",
                maxLength: 200,
                nullable: false,
                defaultValue: "");

            migrationBuilder.CreateTable(
                name: "networks",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    NormalizedName = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Mode = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Subnet = table.Column<string>(type: "character varying(18)", maxLength: 18, nullable: false),
                    Gateway = table.Column<string>(type: "character varying(15)", maxLength: 15, nullable: false),
                    Dns = table.Column<string>(type: "character varying(15)", maxLength: 15, nullable: false),
                    Dhcp = table.Column<bool>(type: "boolean", nullable: false),
                    DhcpStart = table.Column<string>(type: "character varying(15)", maxLength: 15, nullable: false),
                    DhcpEnd = table.Column<string>(type: "character varying(15)", maxLength: 15, nullable: false),
                    Outbound = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_networks", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "tasks",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Type = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    TargetType = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    TargetId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    TargetName = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    UserId = table.Column<Guid>(type: "uuid", nullable: true),
                    UserName = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Completed = table.Column<long>(type: "bigint", nullable: false),
                    Total = table.Column<long>(type: "bigint", nullable: false),
                    Message = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    Log = table.Column<string>(type: "character varying(65536)", maxLength: 65536, nullable: false),
                    ResultJson = table.Column<string>(type: "text", nullable: true),
                    ErrorStatus = table.Column<int>(type: "integer", nullable: true),
                    ErrorTitle = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    ErrorDetail = table.Column<string>(type: "character varying(4000)", maxLength: 4000, nullable: true),
                    CancelRequested = table.Column<bool>(type: "boolean", nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    StartedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    EndedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_tasks", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "user_groups",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    NormalizedName = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Description = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_user_groups", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "vm_leases",
                columns: table => new
                {
                    VmId = table.Column<Guid>(type: "uuid", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    DeleteAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    StoppedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    SetByName = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_vm_leases", x => x.VmId);
                    table.ForeignKey(
                        name: "FK_vm_leases_virtual_machines_VmId",
                        column: x => x.VmId,
                        principalTable: "virtual_machines",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "vm_snapshots",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    VmId = table.Column<Guid>(type: "uuid", nullable: false),
                    ParentId = table.Column<Guid>(type: "uuid", nullable: true),
                    Name = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Description = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    IncludesMemory = table.Column<bool>(type: "boolean", nullable: false),
                    StateFile = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    SizeBytes = table.Column<long>(type: "bigint", nullable: false),
                    IsCurrent = table.Column<bool>(type: "boolean", nullable: false),
                    layers = table.Column<string>(type: "jsonb", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_vm_snapshots", x => x.Id);
                    table.ForeignKey(
                        name: "FK_vm_snapshots_virtual_machines_VmId",
                        column: x => x.VmId,
                        principalTable: "virtual_machines",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_vm_snapshots_vm_snapshots_ParentId",
                        column: x => x.ParentId,
                        principalTable: "vm_snapshots",
                        principalColumn: "Id");
                });

            migrationBuilder.CreateTable(
                name: "group_quotas",
                columns: table => new
                {
                    GroupId = table.Column<Guid>(type: "uuid", nullable: false),
                    MaxVms = table.Column<int>(type: "integer", nullable: true),
                    MaxRunningVms = table.Column<int>(type: "integer", nullable: true),
                    MaxMemoryMiB = table.Column<int>(type: "integer", nullable: true),
                    MaxDiskGiB = table.Column<int>(type: "integer", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_group_quotas", x => x.GroupId);
                    table.ForeignKey(
                        name: "FK_group_quotas_user_groups_GroupId",
                        column: x => x.GroupId,
                        principalTable: "user_groups",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "template_groups",
                columns: table => new
                {
                    TemplateId = table.Column<Guid>(type: "uuid", nullable: false),
                    GroupId = table.Column<Guid>(type: "uuid", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_template_groups", x => new { x.TemplateId, x.GroupId });
                    table.ForeignKey(
                        name: "FK_template_groups_user_groups_GroupId",
                        column: x => x.GroupId,
                        principalTable: "user_groups",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_template_groups_vm_templates_TemplateId",
                        column: x => x.TemplateId,
                        principalTable: "vm_templates",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "user_group_members",
                columns: table => new
                {
                    GroupId = table.Column<Guid>(type: "uuid", nullable: false),
                    UserId = table.Column<Guid>(type: "uuid", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_user_group_members", x => new { x.GroupId, x.UserId });
                    table.ForeignKey(
                        name: "FK_user_group_members_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_user_group_members_user_groups_GroupId",
                        column: x => x.GroupId,
                        principalTable: "user_groups",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_networks_NormalizedName",
                table: "networks",
                column: "NormalizedName",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_tasks_Status",
                table: "tasks",
                column: "Status");

            migrationBuilder.CreateIndex(
                name: "IX_tasks_TargetType_TargetId",
                table: "tasks",
                columns: new[] { "TargetType", "TargetId" });

            migrationBuilder.CreateIndex(
                name: "IX_tasks_UserId_CreatedAt",
                table: "tasks",
                columns: new[] { "UserId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_template_groups_GroupId",
                table: "template_groups",
                column: "GroupId");

            migrationBuilder.CreateIndex(
                name: "IX_user_group_members_UserId",
                table: "user_group_members",
                column: "UserId");

            migrationBuilder.CreateIndex(
                name: "IX_user_groups_NormalizedName",
                table: "user_groups",
                column: "NormalizedName",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_vm_leases_ExpiresAt",
                table: "vm_leases",
                column: "ExpiresAt");

            migrationBuilder.CreateIndex(
                name: "IX_vm_snapshots_ParentId",
                table: "vm_snapshots",
                column: "ParentId");

            migrationBuilder.CreateIndex(
                name: "IX_vm_snapshots_VmId_Name",
                table: "vm_snapshots",
                columns: new[] { "VmId", "Name" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "group_quotas");

            migrationBuilder.DropTable(
                name: "networks");

            migrationBuilder.DropTable(
                name: "tasks");

            migrationBuilder.DropTable(
                name: "template_groups");

            migrationBuilder.DropTable(
                name: "user_group_members");

            migrationBuilder.DropTable(
                name: "vm_leases");

            migrationBuilder.DropTable(
                name: "vm_snapshots");

            migrationBuilder.DropTable(
                name: "user_groups");

            migrationBuilder.DropColumn(
                name: "StateReason",
                table: "virtual_machines");

            migrationBuilder.DropColumn(
                name: "LastUsedAddress",
                table: "api_tokens");

            migrationBuilder.DropColumn(
                name: "RateLimitPerMinute",
                table: "api_tokens");

            migrationBuilder.DropColumn(
                name: "Scopes",
                table: "api_tokens");
        }
    }
}
