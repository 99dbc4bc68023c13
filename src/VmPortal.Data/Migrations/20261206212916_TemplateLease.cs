using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VmPortal.Data.Migrations
{
    /// <inheritdoc />
    public partial class TemplateLease : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "LeaseGraceHours",
                table: "vm_templates",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "LeaseHours",
                table: "vm_templates",
                type: "integer",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "LeaseGraceHours",
                table: "vm_templates");

            migrationBuilder.DropColumn(
                name: "LeaseHours",
                table: "vm_templates");
        }
    }
}
