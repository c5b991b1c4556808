using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace DeviceOps.WebConsole;

/// <summary>
/// The web console: static HTML, CSS and JavaScript modules embedded in the server assembly, so
/// the one deployable serves it wherever it runs (no content root or wwwroot to find, no build
/// step). The shell answers <c>/</c> and <c>/devices/…</c>, the console's own routes; its
/// scripts and styles are under <c>/console/</c>. Nothing here needs a token: the page signs in
/// with one and sends it to the API itself.
/// </summary>
public static class ConsoleApi
{
    public const string AssetPrefix = "/console";

    /// <summary>
    /// No inline script or style, nothing from another origin, no framing: an injected tag can
    /// neither run nor load anything, and the token in sessionStorage cannot leave for another host.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, Asset> Assets = Load();
    private static readonly string[] GetOrHead = [HttpMethods.Get, HttpMethods.Head];

    public static IEndpointRouteBuilder MapWebConsole(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").AllowAnonymous().ExcludeFromDescription();
        group.MapMethods("/", GetOrHead, Shell);
        group.MapMethods("/devices/{**device}", GetOrHead, Shell);
        group.MapMethods(AssetPrefix + "/{**file}", GetOrHead, File);
        return app;
    }

    private static IResult Shell(HttpContext http) => Serve(http, Assets["index.html"]);

    /// <summary>An asset, or 404; the bare <c>/console/</c> too (a catch-all may be empty), not a binding failure's 400.</summary>
    private static IResult File(string? file, HttpContext http) =>
        file is not null and not "index.html" && Assets.TryGetValue(file, out var asset) ? Serve(http, asset) : TypedResults.NotFound();

    private static IResult Serve(HttpContext http, Asset asset)
    {
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        // Revalidate every time (a 304 costs little): a new server version shows at once.
        headers.CacheControl = "no-cache";
        headers.ETag = asset.ETag;
        if (http.Request.Headers.IfNoneMatch.ToString() == asset.ETag)
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }
        return TypedResults.Bytes(asset.Content, asset.ContentType);
    }

    private sealed record Asset(byte[] Content, string ContentType, string ETag);

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(ConsoleApi).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        const string prefix = "console/";
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var etag = $"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\"";
            assets[name[prefix.Length..]] = new Asset(content, ContentType(name), etag);
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentType(string name) => System.IO.Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}
