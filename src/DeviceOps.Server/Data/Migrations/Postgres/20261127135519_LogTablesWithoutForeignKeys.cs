using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace DeviceOps.Data.Migrations.Postgres
{
    /// <summary>
    /// The history and the outbox keep their relationships in the model (navigations, joins) but
    /// not as constraints on PostgreSQL: each checked its parents on every insert, five checks
    /// per change. Their parents are never deleted (DeviceOpsDb.OnModelCreating says why).
    /// </summary>
    public partial class LogTablesWithoutForeignKeys : Migration
    {
        private static readonly (string Table, string Column, string Principal)[] Keys =
        [
            ("history", "device_id", "devices"),
            ("history", "operation_id", "operations"),
            ("events", "device_id", "devices"),
            ("events", "operation_id", "operations"),
            ("events", "organization_id", "organizations"),
        ];

        private static string Name((string Table, string Column, string Principal) key) =>
            $"FK_{key.Table}_{key.Principal}_{key.Column}";

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            foreach (var key in Keys)
            {
                migrationBuilder.DropForeignKey(name: Name(key), table: key.Table);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var key in Keys)
            {
                migrationBuilder.AddForeignKey(
                    name: Name(key),
                    table: key.Table,
                    column: key.Column,
                    principalTable: key.Principal,
                    principalColumn: "id",
                    onDelete: ReferentialAction.Restrict);
            }
        }
    }
}
