using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using DeviceOps.Auth;
using DeviceOps.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace DeviceOps.RateLimits;

public sealed class RateLimitOptions
{
    /// <summary>Permits per minute of a token that sets no <c>rate_limit_per_minute</c> of its own.</summary>
    public int DefaultPerMinute { get; set; } = 6_000;

    /// <summary>Permits per minute of one client address sending no valid token.</summary>
    public int AnonymousPerMinute { get; set; } = 120;

    /// <summary>The window the limits count in; a minute unless a test needs it shorter.</summary>
    public int WindowSeconds { get; set; } = 60;

    /// <summary>Request body bytes one permit pays for: a batch costs one permit per started block.</summary>
    public int BytesPerPermit { get; set; } = 64 * 1024;
}

/// <summary>
/// Per-token rate limits on <c>/api/v1/</c>, with ASP.NET Core's rate limiter: a fixed window of
/// one minute per token (per client address without a valid token). A call costs one permit per
/// started 64 KiB of request body, so a 10,000-item batch of about 1 MiB costs 16 permits where
/// 10,000 single calls cost 10,000. Limits are counted per server instance.
/// </summary>
public static class RateLimitSetup
{
    public const string LimitHeader = "RateLimit-Limit";
    public const string RemainingHeader = "RateLimit-Remaining";
    public const string ResetHeader = "RateLimit-Reset";

    public static IServiceCollection AddDeviceOpsRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<RateLimitOptions>(configuration.GetSection("DeviceOps:RateLimit"));
        services.AddSingleton(provider => new CostedLimiter(
            PartitionedRateLimiter.Create<HttpContext, string>(context => Partition(context, provider.GetRequiredService<IOptions<RateLimitOptions>>().Value)),
            provider.GetRequiredService<IOptions<RateLimitOptions>>()));
        services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = OnRejectedAsync;
        });
        services.AddOptions<Microsoft.AspNetCore.RateLimiting.RateLimiterOptions>()
            .Configure<CostedLimiter>((options, limiter) => options.GlobalLimiter = limiter);
        return services;
    }

    /// <summary>After authentication, so the token decides the partition; tells every limited response where it stands.</summary>
    public static IApplicationBuilder UseDeviceOpsRateLimits(this IApplicationBuilder app)
    {
        app.UseRateLimiter();
        return app.Use((context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/api/v1"))
            {
                var limiter = context.RequestServices.GetRequiredService<CostedLimiter>();
                var limit = Limit(context, limiter.Options);
                var remaining = limiter.GetStatistics(context)?.CurrentAvailablePermits ?? 0;
                context.Response.Headers[LimitHeader] = limit.ToString(CultureInfo.InvariantCulture);
                context.Response.Headers[RemainingHeader] = remaining.ToString(CultureInfo.InvariantCulture);
            }
            return next(context);
        });
    }

    private static RateLimitPartition<string> Partition(HttpContext context, RateLimitOptions options)
    {
        if (!context.Request.Path.StartsWithSegments("/api/v1"))
        {
            // Health, metrics, the document and the reference are never limited.
            return RateLimitPartition.GetNoLimiter("exempt");
        }
        var limit = Limit(context, options);
        var key = context.Features.Get<Caller>() is { TokenId: not null } caller
            ? caller.RateLimitPartition(limit)
            : $"address:{context.Connection.RemoteIpAddress ?? IPAddress.None}";
        return RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = limit,
            Window = TimeSpan.FromSeconds(options.WindowSeconds),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    /// <summary>The caller's token, set by authentication, decides; a request without one is limited by address.</summary>
    internal static int Limit(HttpContext context, RateLimitOptions options) =>
        context.Features.Get<Caller>() is { TokenId: not null } caller
            ? caller.RateLimitPerMinute ?? options.DefaultPerMinute
            : options.AnonymousPerMinute;

    private static async ValueTask OnRejectedAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var options = context.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        var limit = Limit(context, options);
        context.Response.Headers.RetryAfter = seconds;
        context.Response.Headers[LimitHeader] = limit.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers[RemainingHeader] = "0";
        context.Response.Headers[ResetHeader] = seconds;
        var problem = Problems.Create(429, "rate_limited", "Too many requests",
            $"This client may make {limit} requests per {options.WindowSeconds} s (a batch costs one per started {options.BytesPerPermit / 1024} KiB of body); retry after {seconds} s.");
        await new StatusProblem(problem).ExecuteAsync(context);
    }

    /// <summary>Asks the partition for as many permits as the request costs.</summary>
    public sealed class CostedLimiter(PartitionedRateLimiter<HttpContext> inner, IOptions<RateLimitOptions> options) : PartitionedRateLimiter<HttpContext>
    {
        public RateLimitOptions Options => options.Value;

        public override RateLimiterStatistics? GetStatistics(HttpContext resource) => inner.GetStatistics(resource);

        protected override RateLimitLease AttemptAcquireCore(HttpContext resource, int permitCount) =>
            inner.AttemptAcquire(resource, Cost(resource, permitCount));

        protected override ValueTask<RateLimitLease> AcquireAsyncCore(HttpContext resource, int permitCount, CancellationToken cancellationToken) =>
            inner.AcquireAsync(resource, Cost(resource, permitCount), cancellationToken);

        /// <summary>
        /// One permit per started <see cref="RateLimitOptions.BytesPerPermit"/> of body, at most the
        /// caller's whole window: a body that costs more than the limit takes every permit of the
        /// window (and then meets the body-size limits), where asking for more than a fixed
        /// window holds made the limiter throw (a 500, even without a token).
        /// </summary>
        private int Cost(HttpContext context, int permitCount)
        {
            var length = Math.Max(0, context.Request.ContentLength ?? 0);
            var perPermit = options.Value.BytesPerPermit;
            var blocks = length / perPermit + (length % perPermit > 0 ? 1 : 0);
            return (int)Math.Min(Math.Max(permitCount, blocks), Math.Max(1, Limit(context, options.Value)));
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
