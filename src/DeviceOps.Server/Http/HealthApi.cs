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
        // Prometheus text format: request counts and durations by route and status (the HTTP
        // middleware), the process, and the .NET runtime's and EF Core's meters. Set before the
        // first scrape, when prometheus-net starts listening; from then on what it listens to is
        // paid for by every request. So only meters read when scraped (observable instruments):
        // ASP.NET Core's own meters record each request, connection and pooled buffer as it
        // happens, over again what the HTTP middleware counts, and with the event counters'
        // listener (the events of ASP.NET Core, Kestrel and sockets, each written out to it) a
        // scraped server did a third fewer /healthz a second and a fifth fewer GETs. Nor the
        // runtime's "Private." meters, kept for its own diagnostics (32 QUIC series, all zero).
        Metrics.SuppressDefaultMetrics(new SuppressDefaultMetricOptions { SuppressEventCounters = true });
        Metrics.ConfigureMeterAdapter(options => options.InstrumentFilterPredicate = IsPublicAndReadWhenScraped);
        app.MapMetrics("/metrics").AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    /// <summary>
    /// Whether an instrument is read only when scraped (observable), at no cost to a request, and
    /// its meter is one .NET publishes for its users (its private ones start with "Private.").
    /// </summary>
    private static bool IsPublicAndReadWhenScraped(System.Diagnostics.Metrics.Instrument instrument) =>
        instrument.IsObservable && !instrument.Meter.Name.StartsWith("Private.", StringComparison.Ordinal);

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
