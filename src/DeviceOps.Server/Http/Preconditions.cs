using DeviceOps.History;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace DeviceOps.Http;

public static class Preconditions
{
    /// <summary>
    /// True when a change of a resource whose current ETag is <paramref name="currentETag"/> may
    /// go ahead (RFC 9110 §13.2.2): <c>If-Match</c>, if sent, names it or is <c>*</c> (the seed's
    /// curl sends none); and <c>If-None-Match</c>, if sent, names neither it nor <c>*</c>, which
    /// an existing resource always matches. Otherwise the answer is 412.
    /// </summary>
    public static bool WriteHolds(HttpRequest request, string currentETag) =>
        (request.Headers.IfMatch.Count == 0 || Names(request.Headers.IfMatch, currentETag, weak: false))
        && !Names(request.Headers.IfNoneMatch, currentETag, weak: true);

    /// <summary>
    /// Whether the header's list names the ETag or is <c>*</c>. Under If-Match a weak tag never
    /// matches (strong comparison); under If-None-Match <c>W/"x"</c> matches <c>"x"</c> (weak comparison).
    /// </summary>
    private static bool Names(Microsoft.Extensions.Primitives.StringValues header, string currentETag, bool weak)
    {
        foreach (var value in header)
        {
            foreach (var tag in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (tag == "*" || tag == currentETag || (weak && tag.StartsWith("W/", StringComparison.Ordinal) && tag[2..] == currentETag))
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
