using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.History;

public static class HistoryApi
{
    public const string Path = "/api/v1/inventory_device_log";

    /// <summary>The append-only log: there is no write endpoint, by design.</summary>
    public static RouteGroupBuilder MapHistory(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Operational history");
        group.MapGet("/", List).RequireAuthorization(AuthExtensions.AnyRead).WithFields<HistoryEntryResponse>()
            .WithSummary("List history entries, newest first")
            .WithDescription("Filters: device_id, operation_id, action, performed_by, request_id, since/until (on timestamp). Ordering: id, timestamp (default -id).");
        group.MapGet("/{id:long}/", Get).RequireAuthorization(AuthExtensions.AnyRead)
            .WithSummary("Get one history entry");
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<Page<HistoryEntryResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = Visible(db, http.Caller());
        if (list.Text("device_id", 64) is { } deviceCode)
        {
            query = query.Where(h => h.Device.DeviceCode == deviceCode);
        }
        if (list.OptionalInt("operation_id") is { } operationId)
        {
            query = query.Where(h => h.OperationId == operationId);
        }
        if (list.Text("action", 64) is { } action)
        {
            query = query.Where(h => h.Action == action);
        }
        if (list.Text("performed_by") is { } performedBy)
        {
            query = query.Where(h => h.PerformedBy == performedBy);
        }
        if (list.Text("request_id", 128) is { } requestId)
        {
            query = query.Where(h => h.RequestId == requestId);
        }
        if (list.Timestamp("since") is { } since)
        {
            query = query.Where(h => h.Timestamp >= since);
        }
        if (list.Timestamp("until") is { } until)
        {
            query = query.Where(h => h.Timestamp < until);
        }
        query = list.Order(query, Orderings, "-id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        return TypedResults.Ok(await list.PageAsync(WithDeviceCode(query), h => h.Entry.ToResponse(h.DeviceCode), cancellationToken));
    }

    public static async Task<Results<Ok<HistoryEntryResponse>, NotFoundProblem>> Get(
        long id, HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var row = await WithDeviceCode(Visible(db, http.Caller()).Where(h => h.Id == id)).FirstOrDefaultAsync(cancellationToken);
        return row is null
            ? Problems.NotFoundResult($"History entry {id}")
            : TypedResults.Ok(row.Entry.ToResponse(row.DeviceCode));
    }

    public sealed record Row(HistoryEntry Entry, string DeviceCode);

    private static IQueryable<HistoryEntry> Visible(DeviceOpsDb db, Caller caller)
    {
        var entries = db.History.AsNoTracking();
        if (caller.Organizations is { } organizations)
        {
            entries = entries.Where(h => organizations.Contains(h.Device.OrganizationId));
        }
        return entries;
    }

    private static IQueryable<Row> WithDeviceCode(IQueryable<HistoryEntry> entries) =>
        entries.Select(h => new Row(h, h.Device.DeviceCode));

    private static readonly Orderings<HistoryEntry, long> Orderings = new Orderings<HistoryEntry, long>(h => h.Id)
        .By("id", h => h.Id)
        .By("timestamp", h => h.Timestamp);
}
