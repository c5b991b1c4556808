using System.Diagnostics;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

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
            if (status >= 500)
            {
                // Never leak exception text to a caller.
                problem.Detail = "An unexpected error occurred; it has been logged with this request_id.";
            }
        });
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        return services;
    }

    public static WebApplication UseDeviceOpsProblemDetails(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    /// <summary>
    /// Handlers return <c>NotFound&lt;ProblemDetails&gt;</c> and <c>Conflict&lt;ProblemDetails&gt;</c> so the
    /// OpenAPI document lists those outcomes, but those results write plain <c>application/json</c>
    /// without the <c>request_id</c>. This filter writes their problem through the problem details
    /// service instead, like every other error: <c>application/problem+json</c> with a request id.
    /// </summary>
    public static TBuilder WithProblemResults<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var result = await next(context);
            var inner = result is INestedHttpResult nested ? nested.Result : result;
            return inner is IValueHttpResult { Value: ProblemDetails problem } and not (ProblemHttpResult or ValidationProblem)
                ? TypedResults.Problem(problem)
                : result;
        });

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
