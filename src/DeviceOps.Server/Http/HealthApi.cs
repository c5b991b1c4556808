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
        // runtime and the process (prometheus-net's default collectors), and the meters of .NET
        // and EF Core — not the runtime's "Private." ones, which it keeps for its own diagnostics
        // (32 QUIC series, all zero, in a server that speaks no QUIC). Set before the first
        // scrape, when the adapter starts listening.
        Metrics.ConfigureMeterAdapter(options => options.InstrumentFilterPredicate = IsPublic);
        app.MapMetrics("/metrics").AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    /// <summary>Whether an instrument's meter is one .NET publishes for its users (its private ones start with "Private.").</summary>
    private static bool IsPublic(System.Diagnostics.Metrics.Instrument instrument) =>
        !instrument.Meter.Name.StartsWith("Private.", StringComparison.Ordinal);

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
