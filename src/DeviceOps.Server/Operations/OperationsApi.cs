using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Operations;

public static class OperationsApi
{
    public const string Path = "/api/v1/inventory_device_operation";

    public static RouteGroupBuilder MapOperations(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Device operations");

        group.MapGet("/", List).RequireScope(Scopes.OperationsRead).WithFields<OperationResponse>()
            .WithSummary("List device operations")
            .WithDescription("Filters: device_id, status, operation_type, operator_id, since/until (on created_at). Ordering: id, created_at, updated_at, started_at, completed_at, status.");
        group.MapPost("/", Create).RequireScope(Scopes.OperationsWrite)
            .Accepts<OperationRequest>("application/json")
            .WithSummary("Open an operation on a device, or many")
            .WithDescription("An object opens one operation (201 with Location). An array of up to 10,000 objects opens them all or none (201 with the results in order).");
        // The hot endpoints: on PostgreSQL their first statement carries the token's revocation check.
        group.MapGet("/{id:int}/", Get).RequireScope(Scopes.OperationsRead).CarriesRevocationCheck()
            .WithSummary("Get one operation with its device and latest history");
        group.MapPut("/{id:int}/", Put).RequireScope(Scopes.OperationsWrite).CarriesRevocationCheck()
            .Accepts<OperationRequest>("application/json")
            .WithSummary("Update a device operation")
            .WithDescription("Replaces the operation's own fields (device_id, operation_type and status are required) and applies the device effect fields given, in one transaction, writing one history entry per change. 404 when the operation does not exist: PUT never creates.");
        group.MapPatch("/{id:int}/", Patch).RequireScope(Scopes.OperationsWrite).CarriesRevocationCheck()
            .Accepts<OperationRequest>("application/json")
            .WithSummary("Partially update a device operation");

        group.MapOperationBatches();
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<Page<OperationResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var caller = http.Caller();
        var query = Visible(db.Operations.AsNoTracking(), caller);

        if (list.Text("device_id", 64) is { } deviceCode)
        {
            query = query.Where(o => o.Device.DeviceCode == deviceCode);
        }
        if (list.Choice("status", OperationStatus.All) is { } status)
        {
            query = query.Where(o => o.Status == status);
        }
        if (list.Text("operation_type", 64) is { } type)
        {
            query = query.Where(o => o.OperationType == type);
        }
        if (list.Text("operator_id", 64) is { } operatorId)
        {
            query = query.Where(o => o.OperatorId == operatorId);
        }
        if (list.Timestamp("since") is { } since)
        {
            query = query.Where(o => o.CreatedAt >= since);
        }
        if (list.Timestamp("until") is { } until)
        {
            query = query.Where(o => o.CreatedAt < until);
        }
        query = list.Order(query, Orderings, "id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        return TypedResults.Ok(await list.PageAsync(query, o => o.ToResponse(null), cancellationToken));
    }

    public static async Task<Results<Ok<OperationResponse>, NotFoundProblem, ChallengeHttpResult>> Get(
        int id, HttpContext http, ReadGroups reads, CancellationToken cancellationToken)
    {
        var (operation, history) = await reads.ReadAsync(id, http, cancellationToken);
        if (await RevocationCheck.RefusedAsync(http, cancellationToken) is { } refused)
        {
            return refused;
        }
        if (operation is null)
        {
            return Problems.NotFoundResult($"Operation {id}");
        }
        http.Response.Headers.ETag = operation.ETag();
        return TypedResults.Ok(operation.ToResponse(history));
    }

    public static async Task<Results<Created<OperationResponse>, Created<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>> Create(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectOrArrayAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        if (body.ValueKind == JsonValueKind.Array)
        {
            var (items, itemsProblem) = Batch.Items(http.Request, body);
            if (itemsProblem is not null)
            {
                return itemsProblem;
            }
            return await OperationsBatchApi.CreateAsync(items, http, writer, clock, cancellationToken);
        }
        var errors = new Errors();
        var input = OperationInput.Read(body, WriteMode.Create, errors);
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary());
        }

        var caller = http.Caller();
        return await writer.WriteAsync<Results<Created<OperationResponse>, Created<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>>(async (db, token) =>
        {
            var device = await DevicesApi.FindForWriteAsync(db, caller, input.DeviceId.Value!, token);
            if (device is null)
            {
                return (Problems.Validation("device_id", $"No device has the id \"{input.DeviceId.Value}\"."), false);
            }

            var change = NewChange(http, clock, input.Justification);
            var operation = OperationWrites.Open(device, input, change);
            if (change.Errors.Any)
            {
                return (Problems.Validation(change.Errors.ToDictionary()), false);
            }
            if (change.Conflict is { } conflict)
            {
                return (Transitions.ConflictResult(conflict), false);
            }

            db.Operations.Add(operation);
            db.Record(change.Entries);
            await db.SaveChangesAsync(token);
            var location = $"{Path}/{operation.Id}/";
            var response = await RespondAsync(http, db, operation, token);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, response, location, clock, token);
            return (TypedResults.Created(location, response), true);
        }, cancellationToken);
    }

    public static Task<Results<UpdateResult, ChallengeHttpResult>> Put(
        int id, HttpContext http, StoreWriter writer, UpdateGroups groups, LatestHistory latest, TimeProvider clock,
        CancellationToken cancellationToken) =>
        UpdateAsync(id, WriteMode.Replace, http, writer, groups, latest, clock, cancellationToken);

    public static Task<Results<UpdateResult, ChallengeHttpResult>> Patch(
        int id, HttpContext http, StoreWriter writer, UpdateGroups groups, LatestHistory latest, TimeProvider clock,
        CancellationToken cancellationToken) =>
        UpdateAsync(id, WriteMode.Patch, http, writer, groups, latest, clock, cancellationToken);

    private static async Task<Results<UpdateResult, ChallengeHttpResult>> UpdateAsync(int id, WriteMode mode, HttpContext http,
        StoreWriter writer, UpdateGroups groups, LatestHistory latest, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return (UpdateResult)new BodyProblem(problem);
        }
        var errors = new Errors();
        var input = OperationInput.Read(body, mode, errors);
        if (errors.Any)
        {
            return (UpdateResult)Problems.Validation(errors.ToDictionary());
        }
        if (mode == WriteMode.Replace)
        {
            input = input.AsReplacement();
        }

        if (groups.Enabled && await groups.UpdateAsync(id, input, http, clock, cancellationToken) is { } grouped)
        {
            return grouped;
        }
        // Written alone: the group refused the token, or did not get to check it. A check still
        // pending is made in the write, before the operation is read (RevocationCheck).
        if (RevocationCheck.Pending(http) is null && await RevocationCheck.RefusedAsync(http, cancellationToken) is { } refused)
        {
            return refused;
        }
        var caller = http.Caller();
        var updated = await writer.WriteSqlAsync<UpdateResult?>(async (session, token) =>
        {
            if (RevocationCheck.Pending(http) is { } check && !await check.MakeAsync(session, token))
            {
                return (null, false);
            }
            var (operation, newestEntry) = await OperationRows.LoadForWriteAsync(session, id, caller, token);
            if (Apply(id, operation, input, http, clock, out var asRead, out var change) is { } refused)
            {
                return (refused, false);
            }
            var changed = operation!;
            var history = await OperationRows.SaveAsync(session, changed, asRead, newestEntry, change.Entries, latest, token);
            http.Response.Headers.ETag = changed.ETag();
            var response = changed.ToResponse(history);
            await IdempotencyKeys.RecordAsync(http, session, StatusCodes.Status200OK, response, null, clock, token);
            return (TypedResults.Ok(response), true);
        }, cancellationToken);
        if (updated is null)
        {
            return (await RevocationCheck.RefusedAsync(http, cancellationToken))!;
        }
        return updated;
    }

    /// <summary>
    /// Applies a PUT or PATCH to the operation as loaded for the write (null: not there, or not the
    /// caller's to see): its answer if refused — 404, 412, 422 or 409 — with nothing changed
    /// worth storing; null when the change is to be stored, with the columns as read before it.
    /// The one-request write and the PostgreSQL groups (<see cref="UpdateGroups"/>) share it.
    /// </summary>
    internal static UpdateResult? Apply(int id, DeviceOperation? operation, OperationInput input, HttpContext http, TimeProvider clock,
        out OperationRows.AsRead asRead, out ChangeContext change)
    {
        asRead = default;
        change = null!;
        if (operation is null)
        {
            return Problems.NotFoundResult($"Operation {id}");
        }
        if (!Preconditions.WriteHolds(http.Request, operation.ETag()))
        {
            return Problems.PreconditionFailedResult();
        }
        asRead = OperationRows.AsRead.Of(operation);
        change = NewChange(http, clock, input.Justification);
        OperationWrites.Update(operation, input, change);
        if (change.Errors.Any)
        {
            return Problems.Validation(change.Errors.ToDictionary());
        }
        if (change.Conflict is { } conflict)
        {
            return Transitions.ConflictResult(conflict);
        }
        return null;
    }

    /// <summary>A request's change context: the caller, one clock reading, the request id, and whether it may override.</summary>
    internal static ChangeContext NewChange(HttpContext http, TimeProvider clock, string? justification)
    {
        var caller = http.Caller();
        return new ChangeContext(caller.Email, Rfc3339.Now(clock), http.TraceIdentifier, justification,
            caller.Has(Scopes.OperationsOverride));
    }

    internal static IQueryable<DeviceOperation> Visible(IQueryable<DeviceOperation> operations, Caller caller)
    {
        var query = operations.Include(o => o.Device).ThenInclude(d => d.Organization).Where(o => o.Device.DeletedAt == null);
        if (caller.Organizations is { } organizations)
        {
            query = query.Where(o => organizations.Contains(o.Device.OrganizationId));
        }
        return query;
    }

    private static async Task<OperationResponse> RespondAsync(HttpContext http, DeviceOpsDb db, DeviceOperation operation, CancellationToken cancellationToken)
    {
        http.Response.Headers.ETag = operation.ETag();
        var history = await DevicesApi.LatestHistoryAsync(db, operation.Device, cancellationToken);
        return operation.ToResponse(history);
    }

    private static readonly Orderings<DeviceOperation, int> Orderings = new Orderings<DeviceOperation, int>(o => o.Id)
        .By("id", o => o.Id)
        .By("created_at", o => o.CreatedAt)
        .By("updated_at", o => o.UpdatedAt)
        .By("started_at", o => o.StartedAt)
        .By("completed_at", o => o.CompletedAt)
        .By("status", o => o.Status);
}
