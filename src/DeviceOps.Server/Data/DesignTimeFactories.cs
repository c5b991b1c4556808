using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace DeviceOps.Data;

// Used only by `dotnet ef migrations add`; the running server configures the store in StoreExtensions.
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteDeviceOpsDb>
{
    public SqliteDeviceOpsDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteDeviceOpsDb>().UseSqlite("Data Source=design.db").Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresDeviceOpsDb>
{
    public PostgresDeviceOpsDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresDeviceOpsDb>().UseNpgsql("Host=localhost;Database=design").Options);
}
