using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VmPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class VmStateReason : Migration
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
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "StateReason",
                table: "virtual_machines");
        }
    }
}
