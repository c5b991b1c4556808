using System.Text.Json.Nodes;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Demo;

/// <summary>
/// The seed page's example world: organization <c>IT Infrastructure</c>, the switch
/// <c>DEV-001</c> with an open maintenance operation (id 123 when that id is free, so the seed's
/// curl works as written), and a token printed for the user <c>admin@company.com</c>.
/// </summary>
public static class DemoData
{
    public const string DemoUser = "admin@company.com";
    public const string DemoTokenDescription = "demo";
    public const int SeedOperationId = 123;

    public static async Task<(int OperationId, string Secret)> EnsureAsync(DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var now = Rfc3339.Now(clock);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        var organization = await db.Organizations.FirstOrDefaultAsync(o => o.Name == "IT Infrastructure", cancellationToken);
        if (organization is null)
        {
            organization = new Organization("IT Infrastructure", now);
            db.Organizations.Add(organization);
        }

        var device = await db.Devices.FirstOrDefaultAsync(d => d.DeviceCode == "DEV-001", cancellationToken);
        DeviceOperation? operation = null;
        if (device is null)
        {
            var change = new ChangeContext("demo@localhost", now, "demo", null, mayOverride: false);
            device = Device.Register("DEV-001", "Network Switch - NS-001", "NS001-ABC123", "network_switch", organization,
                DeviceStatus.Active, change);
            device.Relocate("Warehouse A - Section 3", change);
            device.Reassign("jane.smith@company.com", change);
            device.Configure(new JsonObject
            {
                ["network_profile"] = "staging",
                ["monitoring_enabled"] = false,
                ["alert_level"] = "low",
                ["firmware_version"] = "2.1.4",
            }, merge: false, change);
            operation = DeviceOperation.Open(device, "maintenance", OperationStatus.InProgress, change);
            operation.Describe(default, "OP-456", "Routine maintenance check", new(true, null), default, default, change);
            operation.Stamp(change);
            db.Devices.Add(device);
            db.Operations.Add(operation);
            if (!await db.Operations.AnyAsync(o => o.Id == SeedOperationId, cancellationToken))
            {
                db.Entry(operation).Property(o => o.Id).CurrentValue = SeedOperationId;
            }
            db.Record(change.Entries);
        }

        // The secret of the previous demo token cannot be shown again; replace it.
        foreach (var old in await db.Tokens.Where(t => t.Description == DemoTokenDescription && t.RevokedAt == null).ToListAsync(cancellationToken))
        {
            old.Revoke(now);
        }
        await db.SaveChangesAsync(cancellationToken);
        if (db.IsPostgres && operation is not null)
        {
            // An explicit id does not move PostgreSQL's identity sequence; move it past the rows.
            await db.Database.ExecuteSqlRawAsync(
                "SELECT setval(pg_get_serial_sequence('operations', 'id'), (SELECT MAX(id) FROM operations))", cancellationToken);
        }
        var issued = await TokenIssuer.IssueAsync(db, DemoUser, Scopes.All, [], null, null, DemoTokenDescription, "demo@localhost",
            now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        var operationId = operation?.Id
            ?? await db.Operations.Where(o => o.DeviceId == device.Id).OrderByDescending(o => o.Id).Select(o => o.Id).FirstAsync(cancellationToken);
        return (operationId, issued.Response!.Token!);
    }
}
