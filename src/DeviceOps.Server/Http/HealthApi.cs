using DeviceOps.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Prometheus;

namespace DeviceOps.Http;

public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").WithTags("Health").AllowAnonymous();
        group.MapGet("/healthz", () => TypedResults.Ok(new HealthResponse("ok"))).WithSummary("The process is alive");
        group.MapGet("/readyz", Ready).WithSummary("The database is reachable");
        // Prometheus text format: request counts and durations by route and status, the .NET
        // runtime and the process (prometheus-net's default collectors).
        app.MapMetrics("/metrics").AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    public static async Task<Results<Ok<HealthResponse>, ProblemHttpResult>> Ready(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        bool reachable;
        try
        {
            reachable = await db.Database.CanConnectAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Data.Common.DbException or TimeoutException)
        {
            reachable = false;
        }
        return reachable
            ? TypedResults.Ok(new HealthResponse("ready"))
            : TypedResults.Problem(Problems.Create(503, "unavailable", "Database unreachable", "The database cannot be reached."));
    }
}
