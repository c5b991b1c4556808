using DeviceOps.Data;
using Microsoft.AspNetCore.Http.HttpResults;

namespace DeviceOps.Http;

public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").WithTags("Health").AllowAnonymous();
        group.MapGet("/healthz", () => TypedResults.Ok(new HealthResponse("ok"))).WithSummary("The process is alive");
        group.MapGet("/readyz", Ready).WithSummary("The database is reachable");
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
