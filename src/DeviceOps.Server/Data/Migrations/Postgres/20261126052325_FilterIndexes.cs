using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class FilterIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_operations_operation_type_id",
                table: "operations",
                columns: new[] { "operation_type", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_operations_operator_id_id",
                table: "operations",
                columns: new[] { "operator_id", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_history_action_id",
                table: "history",
                columns: new[] { "action", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_history_performed_by_id",
                table: "history",
                columns: new[] { "performed_by", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_devices_assigned_user",
                table: "devices",
                column: "assigned_user");

            migrationBuilder.CreateIndex(
                name: "IX_devices_location",
                table: "devices",
                column: "location");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_operations_operation_type_id",
                table: "operations");

            migrationBuilder.DropIndex(
                name: "IX_operations_operator_id_id",
                table: "operations");

            migrationBuilder.DropIndex(
                name: "IX_history_action_id",
                table: "history");

            migrationBuilder.DropIndex(
                name: "IX_history_performed_by_id",
                table: "history");

            migrationBuilder.DropIndex(
                name: "IX_devices_assigned_user",
                table: "devices");

            migrationBuilder.DropIndex(
                name: "IX_devices_location",
                table: "devices");
        }
    }
}
