namespace DeviceOps.Http;

public static class KnownMethods
{
    private static readonly object HeadKey = new();

    /// <summary>A <c>HEAD</c> request, served as its <c>GET</c>: a stream sends its headers and ends.</summary>
    public static bool IsHead(HttpContext context) => context.Items.ContainsKey(HeadKey);

    private static readonly HashSet<string> Served =
        [HttpMethods.Get, HttpMethods.Head, HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete, HttpMethods.Options];

    /// <summary>
    /// A method no route here serves (<c>TRACE</c>, <c>PROPFIND</c>, any made-up word) is answered
    /// <c>501 Not Implemented</c> (RFC 9110, 15.6.2) before the HTTP metrics see it: they label
    /// every request with its method, so each new word an anonymous client sent added series to
    /// <c>/metrics</c> for as long as the process ran.
    /// </summary>
    /// <remarks>
    /// <c>HEAD</c> is answered as the <c>GET</c> of the same URL without its body (RFC 9110,
    /// 9.3.2): the same status and headers — an <c>ETag</c>, a 404, a 401 — so a client can check
    /// a resource or a token without reading it.
    /// </remarks>
    public static IApplicationBuilder UseKnownMethods(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (HttpMethods.IsHead(context.Request.Method))
        {
            context.Items[HeadKey] = true;
            context.Request.Method = HttpMethods.Get;
            var body = context.Response.Body;
            context.Response.Body = Stream.Null;
            try
            {
                await next(context);
            }
            finally
            {
                context.Response.Body = body;
            }
            return;
        }
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
