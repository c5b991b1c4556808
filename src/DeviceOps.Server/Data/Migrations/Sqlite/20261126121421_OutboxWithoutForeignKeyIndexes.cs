using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class OutboxWithoutForeignKeyIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_events_device_id",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_events_operation_id",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_events_organization_id",
                table: "events");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_events_device_id",
                table: "events",
                column: "device_id");

            migrationBuilder.CreateIndex(
                name: "IX_events_operation_id",
                table: "events",
                column: "operation_id");

            migrationBuilder.CreateIndex(
                name: "IX_events_organization_id",
                table: "events",
                column: "organization_id");
        }
    }
}
