using DeviceOps.Auth;
using DeviceOps.Devices;
using DeviceOps.Events;
using DeviceOps.History;
using DeviceOps.Idempotency;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using DeviceOps.Webhooks;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace DeviceOps.Data;

/// <summary>
/// The store. The model is shared; each provider has its own subclass so that each keeps its
/// own migration set (EF Core's "migrations with multiple providers").
/// </summary>
public abstract class DeviceOpsDb(DbContextOptions options) : DbContext(options)
{
    public DbSet<Organization> Organizations => Set<Organization>();
    public DbSet<Device> Devices => Set<Device>();
    public DbSet<DeviceOperation> Operations => Set<DeviceOperation>();
    public DbSet<HistoryEntry> History => Set<HistoryEntry>();
    public DbSet<ApiToken> Tokens => Set<ApiToken>();
    public DbSet<OutboxEvent> Events => Set<OutboxEvent>();
    public DbSet<Webhook> Webhooks => Set<Webhook>();
    public DbSet<WebhookDelivery> Deliveries => Set<WebhookDelivery>();

    /// <summary>
    /// Adds a change's history entries and, for each, its outbox event: saved by the caller's
    /// SaveChanges, so both commit with the change or not at all.
    /// </summary>
    public void Record(IEnumerable<HistoryEntry> entries)
    {
        foreach (var entry in entries)
        {
            History.Add(entry);
            Events.Add(OutboxEvent.For(entry));
        }
    }

    public abstract bool IsPostgres { get; }

    /// <summary>
    /// The same as <see cref="Record"/> for a large change to existing devices and operations (a
    /// batch update): the entries and events are written with multi-row INSERTs after the
    /// entities are saved, in the same transaction, instead of being tracked one by one. A
    /// 10,000-item batch writes some 20,000 rows here; as tracked entities they cost seconds.
    /// </summary>
    public async Task RecordBulkAsync(IReadOnlyList<HistoryEntry> entries, CancellationToken cancellationToken)
    {
        var history = new List<object?[]>(entries.Count);
        var events = new List<object?[]>(entries.Count);
        foreach (var e in entries)
        {
            history.Add(AuditRows.History(e));
            events.Add(AuditRows.Event(e, IsPostgres));
        }
        await InsertAsync("history", AuditRows.HistoryColumns, history, cancellationToken);
        await InsertAsync("events", AuditRows.EventColumns(IsPostgres), events, cancellationToken);
    }

    /// <summary>
    /// Inserts rows with one prepared statement in the current transaction: SQLite runs a
    /// prepared single-row INSERT in microseconds; PostgreSQL gets the rows 500 to a statement,
    /// so they do not cost a round trip each.
    /// </summary>
    private object Value(object? value) => IsPostgres ? value ?? DBNull.Value : SqlSession.SqliteValue(value);

    internal async Task InsertAsync(string table, string[] columns, List<object?[]> rows, CancellationToken cancellationToken)
    {
        var perStatement = IsPostgres ? 500 : 1;
        var connection = Database.GetDbConnection();
        var transaction = Database.CurrentTransaction?.GetDbTransaction();
        for (var start = 0; start < rows.Count; start += perStatement)
        {
            var count = Math.Min(perStatement, rows.Count - start);
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            var values = string.Join(", ", Enumerable.Range(0, count).Select(r =>
                "(" + string.Join(", ", columns.Select((_, c) => $"@p{r}_{c}")) + ")"));
            command.CommandText = $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES {values}";
            for (var r = 0; r < count; r++)
            {
                for (var c = 0; c < columns.Length; c++)
                {
                    var parameter = command.CreateParameter();
                    parameter.ParameterName = $"@p{r}_{c}";
                    parameter.Value = Value(rows[start + r][c]);
                    command.Parameters.Add(parameter);
                }
            }
            if (perStatement > 1)
            {
                await command.ExecuteNonQueryAsync(cancellationToken);
                continue;
            }
            // One row per statement (SQLite): prepare once, rebind and run for every row.
            await command.PrepareAsync(cancellationToken);
            for (var r = start; r < rows.Count; r++)
            {
                for (var c = 0; c < columns.Length; c++)
                {
                    command.Parameters[c].Value = Value(rows[r][c]);
                }
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            return;
        }
    }

    /// <summary>
    /// Takes the write lock of one device for the rest of the transaction, so two requests on
    /// one device are serialised and neither loses an update or a history entry. On SQLite the
    /// transaction itself is the lock (BEGIN IMMEDIATE takes the database's write lock).
    /// </summary>
    public Task LockDeviceAsync(int deviceId, CancellationToken cancellationToken) => IsPostgres
        ? Database.ExecuteSqlAsync($"SELECT 1 FROM devices WHERE id = {deviceId} FOR UPDATE", cancellationToken)
        : Task.CompletedTask;

    /// <summary>
    /// Takes the write locks of several devices, in id order so that two batches touching the
    /// same devices cannot deadlock.
    /// </summary>
    public Task LockDevicesAsync(IEnumerable<int> deviceIds, CancellationToken cancellationToken)
    {
        if (!IsPostgres)
        {
            return Task.CompletedTask;
        }
        var ids = deviceIds.Distinct().Order().ToArray();
        return Database.ExecuteSqlAsync($"SELECT 1 FROM devices WHERE id = ANY({ids}) ORDER BY id FOR UPDATE", cancellationToken);
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // SQLite hands DateTime back with an unspecified kind; every time we store is UTC.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
        // Every index is declared below, for a query that reads by it. EF Core would also index
        // each foreign key, for deletes of the parent row: of those, only the outbox's device,
        // operation and organization were not covered by a declared index — three index writes
        // more on every change, for parents that are never deleted (a device is marked deleted).
        configurationBuilder.Conventions.Remove<Microsoft.EntityFrameworkCore.Metadata.Conventions.ForeignKeyIndexConvention>();
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Organization>(e =>
        {
            e.ToTable("organizations");
            e.Property(o => o.Name).HasMaxLength(200);
            e.HasIndex(o => o.Name).IsUnique();
        });

        modelBuilder.Entity<Device>(e =>
        {
            e.ToTable("devices");
            e.Property(d => d.DeviceCode).HasMaxLength(64);
            e.Property(d => d.Name).HasMaxLength(200);
            e.Property(d => d.SerialNumber).HasMaxLength(100);
            e.Property(d => d.DeviceType).HasMaxLength(64);
            e.Property(d => d.Status).HasMaxLength(32);
            e.Property(d => d.Location).HasMaxLength(200);
            e.Property(d => d.AssignedUser).HasMaxLength(254);
            e.Property(d => d.UpdatedBy).HasMaxLength(254);
            e.HasIndex(d => d.DeviceCode).IsUnique();
            e.HasIndex(d => d.SerialNumber).IsUnique();
            e.HasIndex(d => new { d.OrganizationId, d.Status });
            e.HasIndex(d => d.Status);
            e.HasIndex(d => d.DeviceType);
            e.HasIndex(d => d.NextMaintenance);
            // The location's index is SQLite's only (SqliteDeviceOpsDb says why).
            e.HasIndex(d => d.AssignedUser);
            e.HasOne(d => d.Organization).WithMany().OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<DeviceOperation>(e =>
        {
            e.ToTable("operations");
            e.Property(o => o.OperationType).HasMaxLength(64);
            e.Property(o => o.Status).HasMaxLength(32);
            e.Property(o => o.OperatorId).HasMaxLength(64);
            e.Property(o => o.CreatedBy).HasMaxLength(254);
            e.HasIndex(o => new { o.DeviceId, o.Id });
            e.HasIndex(o => new { o.Status, o.Id });
            e.HasIndex(o => o.CreatedAt);
            e.HasIndex(o => new { o.OperationType, o.Id });
            e.HasIndex(o => new { o.OperatorId, o.Id });
            e.HasOne(o => o.Device).WithMany().OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<HistoryEntry>(e =>
        {
            e.ToTable("history");
            e.Property(h => h.Action).HasMaxLength(64);
            e.Property(h => h.FromStatus).HasMaxLength(32);
            e.Property(h => h.ToStatus).HasMaxLength(32);
            e.Property(h => h.PerformedBy).HasMaxLength(254);
            e.Property(h => h.RequestId).HasMaxLength(128);
            e.HasIndex(h => new { h.DeviceId, h.Id });
            e.HasIndex(h => new { h.OperationId, h.Id });
            e.HasIndex(h => h.Timestamp);
            e.HasIndex(h => h.RequestId);
            e.HasIndex(h => new { h.Action, h.Id });
            e.HasIndex(h => new { h.PerformedBy, h.Id });
            // The history and the outbox are append-only logs of rows that are never deleted: a
            // device is marked deleted, an operation or organization is not deleted at all. On
            // PostgreSQL their five foreign keys are dropped (migration LogTablesWithoutForeignKeys):
            // checking them cost every change five lookups of parents the writer holds locked
            // already, some 30 µs of the database's CPU, and the PUT about 12 % of its rate. On
            // SQLite the checks cost nothing measurable and stay.
            e.HasOne(h => h.Device).WithMany().OnDelete(DeleteBehavior.Restrict);
            e.HasOne(h => h.Operation).WithMany().OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<ApiToken>(e =>
        {
            e.ToTable("tokens");
            e.Property(t => t.User).HasMaxLength(254);
            e.Property(t => t.SecretHash).HasMaxLength(64);
            e.Property(t => t.Hint).HasMaxLength(16);
            e.Property(t => t.CreatedBy).HasMaxLength(254);
            e.HasIndex(t => t.SecretHash).IsUnique();
            e.Ignore(t => t.ScopeList);
            e.Ignore(t => t.OrganizationIdList);
        });

        modelBuilder.Entity<OutboxEvent>(e =>
        {
            e.ToTable("events");
            e.Property(v => v.Type).HasMaxLength(64);
            e.Property(v => v.DeviceCode).HasMaxLength(64);
            e.Property(v => v.RequestId).HasMaxLength(128);
            e.Property(v => v.PerformedBy).HasMaxLength(254);
            e.HasIndex(v => v.EventId).IsUnique();
            // The feed's order has its indexes per store (below): (tx, id) on PostgreSQL, id on SQLite.
            e.HasIndex(v => v.OccurredAt);
            // No constraints behind these on PostgreSQL (see the history above).
            e.HasOne(v => v.Device).WithMany().OnDelete(DeleteBehavior.Restrict);
            e.HasOne(v => v.Operation).WithMany().OnDelete(DeleteBehavior.Restrict);
            e.HasOne(v => v.Organization).WithMany().OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<Webhook>(e =>
        {
            e.ToTable("webhooks");
            e.Property(w => w.Url).HasMaxLength(2000);
            e.Property(w => w.Secret).HasMaxLength(200);
            e.Property(w => w.EventTypes).HasMaxLength(1000);
            e.Property(w => w.OrganizationIds).HasMaxLength(Webhook.MaxOrganizationIdsLength);
            e.Property(w => w.Description).HasMaxLength(500);
            e.Property(w => w.CreatedBy).HasMaxLength(254);
            e.Ignore(w => w.EventTypeList);
            e.Ignore(w => w.OrganizationIdList);
            e.Ignore(w => w.Cursor);
        });

        modelBuilder.Entity<WebhookDelivery>(e =>
        {
            e.ToTable("webhook_deliveries");
            e.Property(d => d.EventType).HasMaxLength(64);
            e.Property(d => d.DeviceCode).HasMaxLength(64);
            e.Property(d => d.Status).HasMaxLength(16);
            e.Property(d => d.LastError).HasMaxLength(500);
            e.Property(d => d.LeaseOwner).HasMaxLength(64);
            // A safeguard: the webhook row lock already keeps two fan-outs from meeting.
            e.HasIndex(d => new { d.WebhookId, d.EventId }).IsUnique();
            e.HasIndex(d => new { d.WebhookId, d.DeviceId, d.Status, d.Id });
            e.HasIndex(d => new { d.Status, d.NextAttemptAt });
            e.HasIndex(d => d.OutboxEventId);
            e.HasIndex(d => d.CreatedAt);
            // Deleting a webhook deletes its deliveries, so its pending ones stop.
            e.HasOne(d => d.Webhook).WithMany().OnDelete(DeleteBehavior.Cascade);
            e.HasOne(d => d.OutboxEvent).WithMany().OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<IdempotencyRecord>(e =>
        {
            e.ToTable("idempotency_records");
            e.Property(r => r.Key).HasMaxLength(255);
            e.Property(r => r.RequestHash).HasMaxLength(64);
            e.Property(r => r.Location).HasMaxLength(300);
            e.Property(r => r.ETag).HasMaxLength(100);
            e.HasIndex(r => new { r.TokenId, r.Key }).IsUnique();
            e.HasIndex(r => r.CreatedAt);
        });

        // Snake-case names, so the schema reads the same as the API on both stores.
        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
            {
                property.SetColumnName(SnakeCase(property.Name));
            }
        }
    }

    private static string SnakeCase(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));

    private sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : DateTime.SpecifyKind(v, DateTimeKind.Utc),
        v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
}

public sealed class SqliteDeviceOpsDb(DbContextOptions<SqliteDeviceOpsDb> options) : DeviceOpsDb(options)
{
    public override bool IsPostgres => false;

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        // One writer commits in id order and tx is always 0: the feed reads by id (the rowid), and
        // one device's feed by (device, id) — a range from the cursor, not all the device's events.
        modelBuilder.Entity<OutboxEvent>().HasIndex(v => new { v.DeviceCode, v.Id });
        // A device's location changes with every relocation, the change devices see most. SQLite
        // updates only the indexes that hold a changed column, so this one costs a relocation one
        // index write. PostgreSQL has no index on it (migration DevicesLocationWithoutIndex):
        // there, changing any indexed column writes a new entry into each of the devices' eight
        // indexes, while a change to unindexed columns is a heap-only update that writes none.
        modelBuilder.Entity<Device>().HasIndex(d => d.Location);
    }
}

public sealed class PostgresDeviceOpsDb(DbContextOptions<PostgresDeviceOpsDb> options) : DeviceOpsDb(options)
{
    public override bool IsPostgres => true;

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        // The writer's transaction id, stamped by the database itself at insert; the feed reads in
        // (tx, id) order, below the oldest transaction still running (Events/EventReader.cs).
        var events = modelBuilder.Entity<OutboxEvent>();
        events.Property(v => v.Tx).HasDefaultValueSql("(pg_current_xact_id()::text)::bigint");
        events.HasIndex(v => new { v.Tx, v.Id });
        events.HasIndex(v => new { v.DeviceCode, v.Tx, v.Id });
    }
}
