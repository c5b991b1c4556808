namespace DeviceOps.Http;

/// <summary>Absolute links in answers: a list's <c>next</c> and <c>previous</c>, the event feed's <c>next</c>.</summary>
public static class Links
{
    /// <summary>
    /// The URL clients reach the server by, e.g. <c>https://deviceops.example.com</c> (with a
    /// path if a proxy serves it under one). Unset, links take the request's own scheme and
    /// <c>Host</c> header, which a client chooses.
    /// </summary>
    public const string PublicUrlSetting = "DeviceOps:PublicUrl";

    /// <summary>The absolute URL of the request's path, without its query.</summary>
    public static string ToPath(HttpRequest request)
    {
        var configured = request.HttpContext.RequestServices.GetRequiredService<IConfiguration>()[PublicUrlSetting];
        return configured is { Length: > 0 }
            ? $"{configured.TrimEnd('/')}{request.Path}"
            : $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}";
    }
}
