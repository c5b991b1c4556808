using DeviceOps.History;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace DeviceOps.Http;

public static class Preconditions
{
    /// <summary>
    /// True when the request has no <c>If-Match</c> (the seed's curl sends none) or one of its
    /// tags is the current ETag or <c>*</c>.
    /// </summary>
    public static bool IfMatchHolds(HttpRequest request, string currentETag)
    {
        var header = request.Headers.IfMatch;
        if (header.Count == 0)
        {
            return true;
        }
        foreach (var value in header)
        {
            foreach (var tag in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // A weak tag never matches under If-Match (RFC 9110 §13.1.1: strong comparison).
                if (tag == "*" || tag == currentETag)
                {
                    return true;
                }
            }
        }
        return false;
    }
}

public static class Transitions
{
    /// <summary>
    /// The 409 of a refused transition: what was asked, the statuses that would be allowed, and
    /// how to override with a justification.
    /// </summary>
    public static ConflictProblem ConflictResult(TransitionConflict conflict)
    {
        var allowed = conflict.Allowed.Count == 0 ? "none: it is final" : string.Join(", ", conflict.Allowed);
        var problem = Problems.Create(409, Problems.InvalidTransition, "Invalid status transition",
            $"{conflict.Field} cannot move from \"{conflict.From}\" to \"{conflict.To}\"; allowed next states: {allowed}. " +
            "A token with the operations:override scope may force it by sending a non-empty justification.");
        problem.Extensions["field"] = conflict.Field;
        problem.Extensions["from"] = conflict.From;
        problem.Extensions["to"] = conflict.To;
        problem.Extensions["allowed_next_states"] = conflict.Allowed;
        return new ConflictProblem(problem);
    }
}
