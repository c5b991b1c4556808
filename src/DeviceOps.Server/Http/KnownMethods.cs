namespace DeviceOps.Http;

public static class KnownMethods
{
    private static readonly HashSet<string> Served =
        [HttpMethods.Get, HttpMethods.Head, HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete, HttpMethods.Options];

    /// <summary>
    /// A method no route here serves (<c>TRACE</c>, <c>PROPFIND</c>, any made-up word) is answered
    /// <c>501 Not Implemented</c> (RFC 9110, 15.6.2) before the HTTP metrics see it: they label
    /// every request with its method, so each new word an anonymous client sent added series to
    /// <c>/metrics</c> for as long as the process ran.
    /// </summary>
    public static IApplicationBuilder UseKnownMethods(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (Served.Contains(context.Request.Method))
        {
            await next(context);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status501NotImplemented;
        await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = Problems.Create(StatusCodes.Status501NotImplemented, "not_implemented", "Not implemented",
                $"This server serves GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS, not {context.Request.Method}."),
        });
    });
}
