using System.Reflection;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;

namespace DeviceOps.Http;

/// <summary>
/// A problem response written through <see cref="IProblemDetailsService"/>, so it is
/// <c>application/problem+json</c> and carries <c>request_id</c> like every other error.
/// (<c>TypedResults.NotFound(problem)</c> would write plain JSON and skip both.) Each subclass
/// declares its status in the endpoint metadata, so the OpenAPI document lists it.
/// </summary>
public abstract class ProblemResult(ProblemDetails problem) : IResult, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<ProblemDetails>
{
    public ProblemDetails Value { get; } = problem;

    object? IValueHttpResult.Value => Value;

    public int? StatusCode => Value.Status;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = Value.Status ?? 500;
        await httpContext.RequestServices.GetRequiredService<IProblemDetailsService>()
            .WriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = Value });
    }

    protected static void Declare<TProblem>(EndpointBuilder builder, int status) where TProblem : ProblemDetails =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(status, typeof(TProblem), ["application/problem+json"]));
}

/// <summary>400 with every field's messages in <c>errors</c>.</summary>
public sealed class ValidationFailed(HttpValidationProblemDetails problem) : ProblemResult(problem), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Declare<HttpValidationProblemDetails>(builder, 400);
}

public sealed class NotFoundProblem(ProblemDetails problem) : ProblemResult(problem), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Declare<ProblemDetails>(builder, 404);
}

public sealed class ConflictProblem(ProblemDetails problem) : ProblemResult(problem), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Declare<ProblemDetails>(builder, 409);
}

public sealed class PreconditionFailedProblem(ProblemDetails problem) : ProblemResult(problem), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Declare<ProblemDetails>(builder, 412);
}

/// <summary>The request body could not be read: 400 (malformed), 413 (too large) or 415 (not JSON).</summary>
public sealed class BodyProblem(ProblemDetails problem) : ProblemResult(problem), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder)
    {
        Declare<ProblemDetails>(builder, 413);
        Declare<ProblemDetails>(builder, 415);
    }
}

/// <summary>A problem whose status no endpoint declares (the middleware's 422 of a reused idempotency key).</summary>
public sealed class StatusProblem(ProblemDetails problem) : ProblemResult(problem);
