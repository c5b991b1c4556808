using System.Diagnostics;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using HttpJsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace DeviceOps.Http;

public static class ProblemDetailsSetup
{
    /// <summary>
    /// Makes every error, including a bare 404 from routing and an unhandled exception, an
    /// RFC 9457 problem with a stable <c>code</c> and the request's <c>request_id</c>.
    /// </summary>
    public static IServiceCollection AddDeviceOpsProblemDetails(this IServiceCollection services)
    {
        services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var problem = context.ProblemDetails;
            var status = problem.Status ?? context.HttpContext.Response.StatusCode;
            problem.Extensions.TryAdd("code", Problems.DefaultCode(status));
            problem.Extensions["request_id"] = context.HttpContext.TraceIdentifier;
            // The framework adds a W3C traceId of its own; request_id is the one identifier we promise.
            problem.Extensions.Remove("traceId");
            problem.Extensions.Remove("trace_id");
            if (status >= 500 && status is not (StatusCodes.Status501NotImplemented or StatusCodes.Status503ServiceUnavailable))
            {
                // Never leak exception text to a caller. (A 501 or 503 says only what we wrote for it.)
                problem.Detail = "An unexpected error occurred; it has been logged with this request_id.";
            }
        });
        // First in line: the problem service asks its writers in turn, and the framework's own
        // would otherwise take every request whose Accept it likes.
        services.Insert(0, ServiceDescriptor.Singleton<IProblemDetailsWriter, ProblemJsonWriter>());
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        services.AddExceptionHandler<StoreUnavailableExceptionHandler>();
        return services;
    }

    /// <summary>
    /// Writes every problem as <c>application/problem+json</c>, whatever the request's
    /// <c>Accept</c> says. The framework's writer declines when <c>Accept</c> names no JSON type
    /// (a browser's <c>text/html</c>, <c>application/xml</c>), and the error then went out as an
    /// empty 500. An answer in a type the client did not list is allowed (RFC 9110, 12.1) and
    /// tells it far more than none. Every problem also gets a <c>type</c> (the framework's
    /// defaults had none for 429) and a title.
    /// </summary>
    private sealed class ProblemJsonWriter(IOptions<ProblemDetailsOptions> options, IOptions<HttpJsonOptions> json) : IProblemDetailsWriter
    {
        public bool CanWrite(ProblemDetailsContext context) => true;

        public ValueTask WriteAsync(ProblemDetailsContext context)
        {
            var problem = context.ProblemDetails;
            var response = context.HttpContext.Response;
            var status = problem.Status ??= response.StatusCode;
            problem.Type ??= TypeOf(status);
            problem.Title ??= ReasonPhrases.GetReasonPhrase(status);
            options.Value.CustomizeProblemDetails?.Invoke(context);
            var typeInfo = json.Value.SerializerOptions.GetTypeInfo(problem.GetType());
            return new ValueTask(response.WriteAsJsonAsync(problem, typeInfo, "application/problem+json", context.HttpContext.RequestAborted));
        }

        /// <summary>Where the status is defined; <c>about:blank</c> (RFC 9457, 4.2.1) for any other.</summary>
        private static string TypeOf(int status) => status switch
        {
            400 => Rfc9110 + "15.5.1",
            401 => Rfc9110 + "15.5.2",
            403 => Rfc9110 + "15.5.4",
            404 => Rfc9110 + "15.5.5",
            405 => Rfc9110 + "15.5.6",
            406 => Rfc9110 + "15.5.7",
            408 => Rfc9110 + "15.5.9",
            409 => Rfc9110 + "15.5.10",
            411 => Rfc9110 + "15.5.12",
            412 => Rfc9110 + "15.5.13",
            413 => Rfc9110 + "15.5.14",
            415 => Rfc9110 + "15.5.16",
            422 => Rfc9110 + "15.5.21",
            428 => Rfc6585 + "3",
            429 => Rfc6585 + "4",
            500 => Rfc9110 + "15.6.1",
            501 => Rfc9110 + "15.6.2",
            503 => Rfc9110 + "15.6.4",
            _ => "about:blank",
        };

        private const string Rfc9110 = "https://www.rfc-editor.org/rfc/rfc9110#section-";
        private const string Rfc6585 = "https://www.rfc-editor.org/rfc/rfc6585#section-";
    }

    public static WebApplication UseDeviceOpsProblemDetails(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    /// <summary>
    /// The store refusing work for a while (<see cref="Data.StoreUnavailable"/>) is neither the
    /// caller's mistake nor a bug: 503 with <c>Retry-After</c>, which clients and load balancers
    /// know to retry, instead of a 500. What the request would have written was rolled back with
    /// its transaction, or never began.
    /// </summary>
    private sealed class StoreUnavailableExceptionHandler(IProblemDetailsService problems, ILogger<StoreUnavailableExceptionHandler> logger)
        : IExceptionHandler
    {
        /// <summary>Seconds a client should wait before trying again.</summary>
        public const int RetryAfterSeconds = 1;

        public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
        {
            if (!Data.StoreUnavailable.Is(exception))
            {
                return false;
            }
            logger.LogWarning(exception, "The store could not take a request; answered 503.");
            httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            httpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return await problems.TryWriteAsync(new ProblemDetailsContext
            {
                HttpContext = httpContext,
                ProblemDetails = Problems.Create(StatusCodes.Status503ServiceUnavailable, "unavailable", "Service unavailable",
                    Data.StoreUnavailable.IsDiskFull(exception)
                        ? "The database's disk is full; nothing was stored. Retry once room is made."
                        : "The database is unavailable or has no connection free; retry shortly."),
                Exception = exception,
            });
        }
    }

    /// <summary>
    /// Kestrel and the framework report client mistakes (a body over Kestrel's limit, a broken
    /// chunked encoding) as <see cref="BadHttpRequestException"/>; they are 4xx, not 500.
    /// </summary>
    private sealed class BadRequestExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
        {
            if (exception is not BadHttpRequestException bad)
            {
                Activity.Current?.AddTag("error", true);
                return false;
            }
            httpContext.Response.StatusCode = bad.StatusCode;
            return await problems.TryWriteAsync(new ProblemDetailsContext
            {
                HttpContext = httpContext,
                ProblemDetails = new ProblemDetails { Status = bad.StatusCode, Title = "Bad request", Detail = bad.Message },
                Exception = exception,
            });
        }
    }
}
