using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Postgres
{
    /// <summary>
    /// Devices' location loses its index on PostgreSQL, so that a relocation is a heap-only update
    /// that writes no index entry, instead of one that writes a new entry into every index of the
    /// device (SqliteDeviceOpsDb says more). A filter or ordering by location reads the devices
    /// instead of the index.
    /// </summary>
    public partial class DevicesLocationWithoutIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(name: "IX_devices_location", table: "devices");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(name: "IX_devices_location", table: "devices", column: "location");
        }
    }
}
