namespace DeviceOps.Http;

public static class RequestIdMiddleware
{
    public const string HeaderName = "X-Request-Id";
    private const int MaxLength = 128;

    /// <summary>
    /// Gives every request an id that is echoed in <c>X-Request-Id</c>, written into history
    /// entries and problem bodies. A caller's own id is kept when it is a sane token, so a
    /// client can correlate its logs with our audit trail.
    /// </summary>
    public static IApplicationBuilder UseRequestId(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        var given = context.Request.Headers[HeaderName].ToString();
        context.TraceIdentifier = IsAcceptable(given) ? given : Guid.CreateVersion7().ToString("N");
        // Set as the answer starts, not now: the exception handler clears the headers of a
        // failed response before it writes the 500, and that answer needs the id most.
        context.Response.OnStarting(static state =>
        {
            var http = (HttpContext)state;
            http.Response.Headers[HeaderName] = http.TraceIdentifier;
            return Task.CompletedTask;
        }, context);
        return next(context);
    });

    private static bool IsAcceptable(string value) =>
        value.Length is > 0 and <= MaxLength && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
}
