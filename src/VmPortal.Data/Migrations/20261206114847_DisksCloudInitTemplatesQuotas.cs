using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VmPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class DisksCloudInitTemplatesQuotas : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // the NIC model the definitions named before the emulator had a card; the e1000 is the one it has now
            migrationBuilder.Sql("UPDATE virtual_machines SET nic = jsonb_set(nic, '{Model}', '\"e1000\"') WHERE nic->>'Model' = 'ne2k_pci';");

            migrationBuilder.AddColumn<string>(
                name: "cloud_init",
                table: "virtual_machines",
                type: "jsonb",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "user_quotas",
                columns: table => new
                {
                    UserId = table.Column<Guid>(type: "uuid", nullable: false),
                    MaxVms = table.Column<int>(type: "integer", nullable: true),
                    MaxRunningVms = table.Column<int>(type: "integer", nullable: true),
                    MaxMemoryMiB = table.Column<int>(type: "integer", nullable: true),
                    MaxDiskGiB = table.Column<int>(type: "integer", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_user_quotas", x => x.UserId);
                    table.ForeignKey(
                        name: "FK_user_quotas_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "vm_templates",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    NormalizedName = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Description = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    Os = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Icon = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    DiskImageId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    CdromImageId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    MemoryMiB = table.Column<int>(type: "integer", nullable: false),
                    MaxMemoryMiB = table.Column<int>(type: "integer", nullable: false),
                    DiskSizeMiB = table.Column<long>(type: "bigint", nullable: false),
                    MaxDiskSizeMiB = table.Column<long>(type: "bigint", nullable: false),
                    BootOrder = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    CloudInit = table.Column<bool>(type: "boolean", nullable: false),
                    HostnamePattern = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    DefaultUser = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    NicEnabled = table.Column<bool>(type: "boolean", nullable: false),
                    Network = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Published = table.Column<bool>(type: "boolean", nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_vm_templates", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_vm_templates_NormalizedName",
                table: "vm_templates",
                column: "NormalizedName",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "user_quotas");

            migrationBuilder.DropTable(
                name: "vm_templates");

            migrationBuilder.DropColumn(
                name: "cloud_init",
                table: "virtual_machines");
        }
    }
}
