using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VmPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class Networks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
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

            migrationBuilder.CreateIndex(
                name: "IX_networks_NormalizedName",
                table: "networks",
                column: "NormalizedName",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "networks");
        }
    }
}
