using Microsoft.AspNetCore.Mvc;

namespace DeviceOps.Http;

/// <summary>
/// The stable machine codes of our problem bodies and the constructors handlers return.
/// Every expected failure is built here so the shape (type, title, status, detail, code,
/// request_id) is the same everywhere; request_id is added by <see cref="ProblemDetailsSetup"/>.
/// </summary>
public static class Problems
{
    public const string ValidationFailed = "validation_failed";
    public const string InvalidTransition = "invalid_transition";
    public const string NotFound = "not_found";
    public const string PreconditionFailed = "precondition_failed";
    public const string Conflict = "conflict";
    public const string MalformedJson = "malformed_json";
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string PayloadTooLarge = "payload_too_large";

    public static ProblemDetails Create(int status, string code, string title, string? detail = null)
    {
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        problem.Extensions["code"] = code;
        return problem;
    }

    public static NotFoundProblem NotFoundResult(string what) =>
        new(Create(StatusCodes.Status404NotFound, NotFound, "Not found", $"{what} does not exist."));

    public static ValidationFailed Validation(IDictionary<string, string[]> errors, string? detail = null)
    {
        var problem = new HttpValidationProblemDetails(errors)
        {
            Status = StatusCodes.Status400BadRequest,
            Title = "Validation failed",
            Detail = detail ?? "The request has invalid fields; see errors.",
        };
        problem.Extensions["code"] = ValidationFailed;
        return new(problem);
    }

    public static ValidationFailed Validation(string field, string message) =>
        Validation(new Dictionary<string, string[]> { [field] = [message] });

    public static ConflictProblem ConflictResult(string code, string title, string detail) =>
        new(Create(StatusCodes.Status409Conflict, code, title, detail));

    public static PreconditionFailedProblem PreconditionFailedResult() =>
        new(Create(StatusCodes.Status412PreconditionFailed, PreconditionFailed, "Precondition failed",
            "The resource has changed since the ETag given in If-Match, or is the one If-None-Match names; fetch it again and retry."));

    public static string DefaultCode(int status) => status switch
    {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => NotFound,
        405 => "method_not_allowed",
        406 => "not_acceptable",
        409 => Conflict,
        412 => PreconditionFailed,
        413 => PayloadTooLarge,
        415 => UnsupportedMediaType,
        422 => "unprocessable",
        429 => "rate_limited",
        501 => "not_implemented",
        503 => "unavailable",
        _ when status >= 500 => "internal_error",
        _ => "error",
    };
}
