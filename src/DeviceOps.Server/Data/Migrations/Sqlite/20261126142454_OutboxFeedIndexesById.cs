using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class OutboxFeedIndexesById : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_events_device_code_tx_id",
                table: "events");

            migrationBuilder.DropIndex(
                name: "IX_events_tx_id",
                table: "events");

            migrationBuilder.CreateIndex(
                name: "IX_events_device_code_id",
                table: "events",
                columns: new[] { "device_code", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_events_device_code_id",
                table: "events");

            migrationBuilder.CreateIndex(
                name: "IX_events_device_code_tx_id",
                table: "events",
                columns: new[] { "device_code", "tx", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_events_tx_id",
                table: "events",
                columns: new[] { "tx", "id" });
        }
    }
}
