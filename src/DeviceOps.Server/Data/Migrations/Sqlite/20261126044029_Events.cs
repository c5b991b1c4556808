using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Events : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "events",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tx = table.Column<long>(type: "INTEGER", nullable: false),
                    event_id = table.Column<Guid>(type: "TEXT", nullable: false),
                    type = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    occurred_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    organization_id = table.Column<int>(type: "INTEGER", nullable: false),
                    device_id = table.Column<int>(type: "INTEGER", nullable: false),
                    device_code = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    operation_id = table.Column<int>(type: "INTEGER", nullable: true),
                    request_id = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    performed_by = table.Column<string>(type: "TEXT", maxLength: 254, nullable: false),
                    data = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_events", x => x.id);
                    table.ForeignKey(
                        name: "FK_events_devices_device_id",
                        column: x => x.device_id,
                        principalTable: "devices",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "FK_events_operations_operation_id",
                        column: x => x.operation_id,
                        principalTable: "operations",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "FK_events_organizations_organization_id",
                        column: x => x.organization_id,
                        principalTable: "organizations",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateIndex(
                name: "IX_events_device_id",
                table: "events",
                column: "device_id");

            migrationBuilder.CreateIndex(
                name: "IX_events_event_id",
                table: "events",
                column: "event_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_events_occurred_at",
                table: "events",
                column: "occurred_at");

            migrationBuilder.CreateIndex(
                name: "IX_events_operation_id",
                table: "events",
                column: "operation_id");

            migrationBuilder.CreateIndex(
                name: "IX_events_organization_id",
                table: "events",
                column: "organization_id");

            migrationBuilder.CreateIndex(
                name: "IX_events_tx_id",
                table: "events",
                columns: new[] { "tx", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "events");
        }
    }
}
