using System.Globalization;
using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Devices;

public static class DevicesApi
{
    public const string Path = "/api/v1/inventory_device";

    public static RouteGroupBuilder MapDevices(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Devices");
        group.MapGet("/", List).RequireScope(Scopes.DevicesRead).WithFields<DeviceResponse>()
            .WithSummary("List devices")
            .WithDescription("Filters: device_id, organization (id or name), operational_status, device_type, location, assigned_user, next_maintenance_before, maintenance_overdue (true: next_maintenance has passed and the device is not decommissioned; false: the others). Ordering: id, device_id, device_name, device_type, organization, operational_status, location, assigned_user, next_maintenance, last_updated, created_at.");
        group.MapGet("/summary/", Summary).RequireScope(Scopes.DevicesRead)
            .WithSummary("Count devices by operational status and organization")
            .WithDescription("Only the devices the token may see. `maintenance_overdue` counts devices whose next_maintenance has passed and that are not decommissioned.");
        group.MapPost("/", Create).RequireScope(Scopes.DevicesWrite)
            .Accepts<DeviceRequest>("application/json").WithSummary("Register a device");
        group.MapGet("/{id:int}/", Get).RequireScope(Scopes.DevicesRead)
            .WithSummary("Get one device with its latest history");
        group.MapPut("/{id:int}/", Put).RequireScope(Scopes.DevicesWrite)
            .Accepts<DeviceRequest>("application/json").WithSummary("Replace a device's description and state");
        group.MapPatch("/{id:int}/", Patch).RequireScope(Scopes.DevicesWrite)
            .Accepts<DeviceRequest>("application/json").WithSummary("Change some of a device's fields");
        group.MapDelete("/{id:int}/", Delete).RequireScope(Scopes.DevicesWrite)
            .WithSummary("Remove a decommissioned device (its history is kept)");
        group.MapDeviceBatches();
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<Page<DeviceResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = Visible(db.Devices.AsNoTracking(), http.Caller());

        if (list.Text("device_id", 64) is { } code)
        {
            query = query.Where(d => d.DeviceCode == code);
        }
        if (list.Text("organization", 200) is { } organization)
        {
            query = Organization.TryParseId(organization, out var organizationId)
                ? query.Where(d => d.OrganizationId == organizationId)
                : query.Where(d => d.Organization.Name == organization);
        }
        if (list.Choice("operational_status", DeviceStatus.All) is { } status)
        {
            query = query.Where(d => d.Status == status);
        }
        if (list.Text("device_type", 64) is { } type)
        {
            query = query.Where(d => d.DeviceType == type);
        }
        if (list.Text("location", 200) is { } location)
        {
            query = query.Where(d => d.Location == location);
        }
        if (list.Text("assigned_user") is { } user)
        {
            query = query.Where(d => d.AssignedUser == user);
        }
        if (list.Timestamp("next_maintenance_before") is { } before)
        {
            query = query.Where(d => d.NextMaintenance < before);
        }
        if (list.Choice("maintenance_overdue", TrueOrFalse) is { } overdue)
        {
            var now = Rfc3339.Now(clock);
            query = overdue == "true"
                ? query.Where(d => d.NextMaintenance < now && d.Status != DeviceStatus.Decommissioned)
                : query.Where(d => !(d.NextMaintenance < now && d.Status != DeviceStatus.Decommissioned));
        }
        query = list.Order(query, Orderings, "id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        return TypedResults.Ok(await list.PageAsync(query, d => d.ToResponse(null), cancellationToken));
    }

    /// <summary>
    /// Counts by organization and status in one grouped query, and the overdue ones in another:
    /// the console's overview shows them without paging through the fleet.
    /// </summary>
    public static async Task<Ok<DeviceSummary>> Summary(HttpContext http, DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        var devices = db.Devices.AsNoTracking().Where(d => d.DeletedAt == null);
        if (caller.Organizations is { } visible)
        {
            devices = devices.Where(d => visible.Contains(d.OrganizationId));
        }
        var now = Rfc3339.Now(clock);
        var counts = await devices.GroupBy(d => new { d.OrganizationId, d.Status })
            .Select(g => new { g.Key.OrganizationId, g.Key.Status, Count = g.Count() })
            .ToListAsync(cancellationToken);
        var overdue = await devices.Where(d => d.NextMaintenance < now && d.Status != DeviceStatus.Decommissioned)
            .GroupBy(d => d.OrganizationId)
            .Select(g => new { OrganizationId = g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.OrganizationId, g => g.Count, cancellationToken);
        var ids = counts.Select(c => c.OrganizationId).Distinct().ToList();
        var names = await db.Organizations.AsNoTracking().Where(o => ids.Contains(o.Id)).ToDictionaryAsync(o => o.Id, o => o.Name, cancellationToken);

        static Dictionary<string, int> ByStatus(IEnumerable<(string Status, int Count)> rows) =>
            DeviceStatus.All.ToDictionary(s => s, s => rows.Where(r => r.Status == s).Sum(r => r.Count));
        var organizations = counts.GroupBy(c => c.OrganizationId)
            .Select(g => new OrganizationSummary(names.GetValueOrDefault(g.Key, g.Key.ToString(CultureInfo.InvariantCulture)),
                g.Sum(c => c.Count), ByStatus(g.Select(c => (c.Status, c.Count))), overdue.GetValueOrDefault(g.Key)))
            .OrderBy(o => o.Organization, StringComparer.Ordinal)
            .ToList();
        return TypedResults.Ok(new DeviceSummary(counts.Sum(c => c.Count), ByStatus(counts.Select(c => (c.Status, c.Count))),
            overdue.Values.Sum(), organizations, now));
    }

    public static async Task<Results<Ok<DeviceResponse>, NotFoundProblem>> Get(
        int id, HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var device = await Visible(db.Devices.AsNoTracking(), http.Caller()).FirstOrDefaultAsync(d => d.Id == id, cancellationToken);
        if (device is null)
        {
            return Problems.NotFoundResult($"Device {id}");
        }
        return TypedResults.Ok(await RespondAsync(http, db, device, cancellationToken));
    }

    public static async Task<Results<Created<DeviceResponse>, BodyProblem, ValidationFailed, ConflictProblem>> Create(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var errors = new Errors();
        var input = DeviceInput.Read(body, WriteMode.Create, errors);
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary());
        }

        var caller = http.Caller();
        return await writer.WriteAsync<Results<Created<DeviceResponse>, BodyProblem, ValidationFailed, ConflictProblem>>(async (db, token) =>
        {
            var organization = await FindOrganizationAsync(db, caller, input.Organization.Value, token);
            if (organization is null)
            {
                return (Problems.Validation("organization", "No organization has this name or id."), false);
            }
            if (await DuplicateAsync(db, input, null, token) is { } duplicate)
            {
                return (duplicate, false);
            }

            var change = OperationsApi.NewChange(http, clock, input.Justification);
            var device = Device.Register(input.DeviceId.Value!, input.DeviceName.Value!, input.SerialNumber.Value!,
                input.DeviceType.Value!, organization, input.Effects.OperationalStatus.Value ?? DeviceStatus.Provisioning, change);
            (input.Effects with { OperationalStatus = default }).ApplyTo(device, change, null, mergeConfiguration: true);
            if (change.Errors.Any)
            {
                return (Problems.Validation(change.Errors.ToDictionary()), false);
            }

            db.Devices.Add(device);
            db.Record(change.Entries);
            if (await SaveAsync(db, token) is { } conflict)
            {
                return (conflict, false);
            }
            var location = $"{Path}/{device.Id}/";
            var response = await RespondAsync(http, db, device, token);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, response, location, clock, token);
            return (TypedResults.Created(location, response), true);
        }, cancellationToken);
    }

    public static Task<Results<Ok<DeviceResponse>, BodyProblem, ValidationFailed, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>> Put(
        int id, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(id, WriteMode.Replace, http, writer, clock, cancellationToken);

    public static Task<Results<Ok<DeviceResponse>, BodyProblem, ValidationFailed, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>> Patch(
        int id, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(id, WriteMode.Patch, http, writer, clock, cancellationToken);

    private static async Task<Results<Ok<DeviceResponse>, BodyProblem, ValidationFailed, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>> UpdateAsync(
        int id, WriteMode mode, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var errors = new Errors();
        var input = DeviceInput.Read(body, mode, errors);
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary());
        }
        if (mode == WriteMode.Replace)
        {
            input = input.AsReplacement();
        }

        var caller = http.Caller();
        return await writer.WriteAsync<Results<Ok<DeviceResponse>, BodyProblem, ValidationFailed, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>>(async (db, token) =>
        {
            await db.LockDeviceAsync(id, token);
            var device = await Visible(db.Devices, caller).FirstOrDefaultAsync(d => d.Id == id, token);
            if (device is null)
            {
                return (Problems.NotFoundResult($"Device {id}"), false);
            }
            if (!Preconditions.WriteHolds(http.Request, device.ETag()))
            {
                return (Problems.PreconditionFailedResult(), false);
            }
            Organization? organization = null;
            if (input.Organization.IsSet)
            {
                organization = await FindOrganizationAsync(db, caller, input.Organization.Value, token);
                if (organization is null)
                {
                    return (Problems.Validation("organization", "No organization has this name or id."), false);
                }
            }
            if (await DuplicateAsync(db, input, device.Id, token) is { } duplicate)
            {
                return (duplicate, false);
            }

            var change = OperationsApi.NewChange(http, clock, input.Justification);
            Update(device, input, organization, mode, change);
            if (change.Errors.Any)
            {
                return (Problems.Validation(change.Errors.ToDictionary()), false);
            }
            if (change.Conflict is { } refused)
            {
                return (Transitions.ConflictResult(refused), false);
            }

            db.Record(change.Entries);
            if (await SaveAsync(db, token) is { } conflict)
            {
                return (conflict, false);
            }
            var response = await RespondAsync(http, db, device, token);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status200OK, response, null, clock, token);
            return (TypedResults.Ok(response), true);
        }, cancellationToken);
    }

    public static async Task<Results<NoContent, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>> Delete(
        int id, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        return await writer.WriteAsync<Results<NoContent, NotFoundProblem, ConflictProblem, PreconditionFailedProblem>>(async (db, token) =>
        {
            await db.LockDeviceAsync(id, token);
            var device = await Visible(db.Devices, http.Caller()).FirstOrDefaultAsync(d => d.Id == id, token);
            if (device is null)
            {
                return (Problems.NotFoundResult($"Device {id}"), false);
            }
            if (!Preconditions.WriteHolds(http.Request, device.ETag()))
            {
                return (Problems.PreconditionFailedResult(), false);
            }
            var change = OperationsApi.NewChange(http, clock, null);
            if (!device.Delete(change))
            {
                return (Problems.ConflictResult("device_not_decommissioned", "Device not decommissioned",
                    $"Only a decommissioned device can be deleted; this one is \"{device.Status}\"."), false);
            }
            // Its open operations would be left behind, unreachable and never finished.
            var open = await db.Operations.Where(o => o.DeviceId == device.Id && OperationStatus.Open.Contains(o.Status))
                .OrderBy(o => o.Id).Select(o => o.Id).Take(10).ToListAsync(token);
            if (open.Count > 0)
            {
                return (Problems.ConflictResult("device_has_open_operations", "Device has open operations",
                    $"Complete, fail or cancel the device's open operations first: {string.Join(", ", open)}{(open.Count == 10 ? ", …" : "")}."), false);
            }
            db.Record(change.Entries);
            await db.SaveChangesAsync(token);
            return (TypedResults.NoContent(), true);
        }, cancellationToken);
    }

    /// <summary>What a PUT or PATCH does to a device, for one request or one batch item.</summary>
    internal static void Update(Device device, DeviceInput input, Organization? organization, WriteMode mode, ChangeContext change)
    {
        if (input.DeviceId is { IsSet: true, Value: { } code } && code != device.DeviceCode)
        {
            change.Errors.Add("device_id", "A device's inventory code cannot change once registered.");
            return;
        }
        device.Describe(input.DeviceName.Value, input.SerialNumber.Value, input.DeviceType.Value, organization, change);
        input.Effects.ApplyTo(device, change, null, mergeConfiguration: mode == WriteMode.Patch);
    }

    /// <summary>Finds a visible device by inventory code inside a write transaction, holding its lock.</summary>
    internal static async Task<Device?> FindForWriteAsync(DeviceOpsDb db, Caller caller, string code, CancellationToken cancellationToken)
    {
        var id = await db.Devices.Where(d => d.DeviceCode == code).Select(d => (int?)d.Id).FirstOrDefaultAsync(cancellationToken);
        if (id is null)
        {
            return null;
        }
        await db.LockDeviceAsync(id.Value, cancellationToken);
        return await Visible(db.Devices, caller).FirstOrDefaultAsync(d => d.Id == id, cancellationToken);
    }

    /// <summary>The device's latest history entries, newest first.</summary>
    internal static async Task<IReadOnlyList<HistoryEntryResponse>> LatestHistoryAsync(DeviceOpsDb db, Device device, CancellationToken cancellationToken)
    {
        var entries = await db.History.AsNoTracking()
            .Where(h => h.DeviceId == device.Id)
            .OrderByDescending(h => h.Id)
            .Take(HistoryMapping.EmbeddedEntries)
            .ToListAsync(cancellationToken);
        return [.. entries.Select(e => e.ToResponse(device.DeviceCode))];
    }

    internal static IQueryable<Device> Visible(IQueryable<Device> devices, Caller caller)
    {
        var query = devices.Include(d => d.Organization).Where(d => d.DeletedAt == null);
        if (caller.Organizations is { } organizations)
        {
            query = query.Where(d => organizations.Contains(d.OrganizationId));
        }
        return query;
    }

    /// <summary>A device's <c>organization</c> names an id as a number, or as <see cref="Organization.TryParseId"/> reads a string; else a name.</summary>
    internal static bool IsOrganizationId(JsonElement value, out int id)
    {
        id = 0;
        return value.ValueKind == JsonValueKind.Number
            ? value.TryGetInt32(out id)
            : value.ValueKind == JsonValueKind.String && Organization.TryParseId(value.GetString(), out id);
    }

    private static async Task<Organization?> FindOrganizationAsync(DeviceOpsDb db, Caller caller, JsonElement value, CancellationToken cancellationToken)
    {
        var organization = IsOrganizationId(value, out var id)
            ? await db.Organizations.FirstOrDefaultAsync(o => o.Id == id, cancellationToken)
            : value.ValueKind == JsonValueKind.String && value.GetString() is { } name
                ? await db.Organizations.FirstOrDefaultAsync(o => o.Name == name, cancellationToken)
                : null;
        // An organization outside the token's reach is as absent as one that does not exist.
        return organization is not null && caller.CanSee(organization.Id) ? organization : null;
    }

    private static async Task<ConflictProblem?> DuplicateAsync(DeviceOpsDb db, DeviceInput input, int? self, CancellationToken cancellationToken)
    {
        if (input.DeviceId is { IsSet: true, Value: { } code } && self is null
            && await db.Devices.AnyAsync(d => d.DeviceCode == code, cancellationToken))
        {
            return Problems.ConflictResult("duplicate", "Duplicate device", $"A device with device_id \"{code}\" already exists.");
        }
        if (input.SerialNumber is { IsSet: true, Value: { } serial }
            && await db.Devices.AnyAsync(d => d.SerialNumber == serial && d.Id != self, cancellationToken))
        {
            return Problems.ConflictResult("duplicate", "Duplicate device", $"A device with serial_number \"{serial}\" already exists.");
        }
        return null;
    }

    /// <summary>Saves; a unique index violated by a concurrent writer is a 409, not a 500.</summary>
    internal static async Task<ConflictProblem?> SaveAsync(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return null;
        }
        catch (DbUpdateException ex) when (Data.UniqueViolation.Is(ex))
        {
            return Problems.ConflictResult("duplicate", "Duplicate device",
                "Another device with this device_id or serial_number was registered at the same time.");
        }
    }

    private static async Task<DeviceResponse> RespondAsync(HttpContext http, DeviceOpsDb db, Device device, CancellationToken cancellationToken)
    {
        http.Response.Headers.ETag = device.ETag();
        return device.ToResponse(await LatestHistoryAsync(db, device, cancellationToken));
    }

    private static readonly string[] TrueOrFalse = ["true", "false"];

    private static readonly Orderings<Device, int> Orderings = new Orderings<Device, int>(d => d.Id)
        .By("id", d => d.Id)
        .By("device_id", d => d.DeviceCode)
        .By("device_name", d => d.Name)
        .By("device_type", d => d.DeviceType)
        .By("organization", d => d.Organization.Name)
        .By("assigned_user", d => d.AssignedUser)
        .By("operational_status", d => d.Status)
        .By("location", d => d.Location)
        .By("next_maintenance", d => d.NextMaintenance)
        .By("last_updated", d => d.LastUpdated)
        .By("created_at", d => d.CreatedAt);
}
