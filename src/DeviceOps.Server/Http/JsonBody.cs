using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace DeviceOps.Http;

public sealed class BodyLimits
{
    /// <summary>Largest body of a request about one object (1 MiB by default).</summary>
    public long MaxObjectBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest body of a batch request (16 MiB by default).</summary>
    public long MaxBatchBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Deepest nesting a body may have; our documents need four levels.</summary>
    public int MaxDepth { get; set; } = 16;

    /// <summary>Most items one batch call may carry.</summary>
    public int MaxBatchItems { get; set; } = 10_000;
}

/// <summary>
/// Reads a request body as JSON ourselves instead of through parameter binding, so each
/// failure gets its own status (415, 413, 400) and problem body, and validation can see which
/// fields were present, absent or null.
/// </summary>
public static class JsonBody
{
    public static async Task<(JsonElement Body, ProblemDetails? Problem)> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var (body, problem) = await ReadAsync(request, batch: false, cancellationToken);
        if (problem is null && body.ValueKind != JsonValueKind.Object)
        {
            problem = Problems.Create(400, Problems.ValidationFailed, "Validation failed", "The body must be a JSON object.");
        }
        return (body, problem);
    }

    /// <summary>
    /// Reads an object, or an array of objects under the larger batch limit; an object is held to
    /// the object limit either way.
    /// </summary>
    public static async Task<(JsonElement Body, ProblemDetails? Problem)> ReadObjectOrArrayAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var limits = request.HttpContext.RequestServices.GetRequiredService<IOptions<BodyLimits>>().Value;
        var (body, problem) = await ReadAsync(request, batch: true, cancellationToken);
        if (problem is null && body.ValueKind == JsonValueKind.Object && request.HttpContext.Features.Get<BodyLength>()?.Bytes > limits.MaxObjectBytes)
        {
            problem = TooLarge(limits.MaxObjectBytes);
        }
        if (problem is null && body.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array))
        {
            problem = Problems.Create(400, Problems.ValidationFailed, "Validation failed", "The body must be a JSON object or an array of objects.");
        }
        return (body, problem);
    }

    private sealed record BodyLength(long Bytes);

    public static async Task<(JsonElement Body, ProblemDetails? Problem)> ReadAsync(HttpRequest request, bool batch, CancellationToken cancellationToken)
    {
        var limits = request.HttpContext.RequestServices.GetRequiredService<IOptions<BodyLimits>>().Value;
        var max = batch ? limits.MaxBatchBytes : limits.MaxObjectBytes;

        if (!IsJson(request.ContentType))
        {
            return (default, Problems.Create(415, Problems.UnsupportedMediaType, "Unsupported media type",
                "Send the body as application/json."));
        }
        if (request.Headers.ContentEncoding.Any(e => !string.Equals(e?.Trim(), "identity", StringComparison.OrdinalIgnoreCase)))
        {
            // Nothing here decodes a body: a gzip body was read as broken JSON, and a plain body
            // marked br was applied as if the mark were not there (RFC 9110, 8.4: 415).
            return (default, Problems.Create(415, Problems.UnsupportedMediaType, "Unsupported media type",
                "Send the body without a Content-Encoding: compressed bodies are not accepted."));
        }
        if (request.ContentLength > max)
        {
            return (default, TooLarge(max));
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.WrittenCount + read > max)
                {
                    return (default, TooLarge(max));
                }
                buffer.Write(chunk.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        if (buffer.WrittenCount == 0)
        {
            return (default, Problems.Create(400, Problems.MalformedJson, "Malformed JSON", "The request body is empty."));
        }
        request.HttpContext.Features.Set(new BodyLength(buffer.WrittenCount));
        try
        {
            using var document = JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = limits.MaxDepth });
            if (FirstUnreadableString(buffer.WrittenSpan, limits.MaxDepth) is { } at)
            {
                return (default, Problems.Create(400, Problems.MalformedJson, "Malformed JSON",
                    $"The string at byte {at + 1} of the request body is not text: it holds bytes that are not UTF-8 or an unpaired surrogate escape such as \\ud800."));
            }
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" at line {line + 1}, position {ex.BytePositionInLine + 1}" : "";
            return (default, Problems.Create(400, Problems.MalformedJson, "Malformed JSON",
                $"The request body is not valid JSON{where}."));
        }
    }

    /// <summary>
    /// The parser checks a string's bytes and escapes only when the string is read, so a name or
    /// value with bytes that are not UTF-8, or an escaped lone surrogate (<c>"\ud800"</c>, which
    /// I-JSON, RFC 7493, forbids), would otherwise fail deep inside a handler. Answers the byte
    /// offset of the first such string or property name, or null when every one is text.
    /// </summary>
    private static long? FirstUnreadableString(ReadOnlySpan<byte> json, int maxDepth)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        char[]? chars = null;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
                {
                    continue;
                }
                if (!reader.ValueIsEscaped)
                {
                    if (!Utf8.IsValid(reader.ValueSpan))
                    {
                        return reader.TokenStartIndex;
                    }
                    continue;
                }
                if (chars is null || chars.Length < reader.ValueSpan.Length)
                {
                    if (chars is not null)
                    {
                        ArrayPool<char>.Shared.Return(chars);
                    }
                    chars = ArrayPool<char>.Shared.Rent(reader.ValueSpan.Length);
                }
                try
                {
                    reader.CopyString(chars);
                }
                catch (InvalidOperationException)
                {
                    return reader.TokenStartIndex;
                }
            }
            return null;
        }
        finally
        {
            if (chars is not null)
            {
                ArrayPool<char>.Shared.Return(chars);
            }
        }
    }

    private static ProblemDetails TooLarge(long max) =>
        Problems.Create(413, Problems.PayloadTooLarge, "Payload too large", $"The request body is larger than {max} bytes.");

    private static bool IsJson(string? contentType)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType.Value is not { } type)
        {
            return false;
        }
        // A parameter value may be quoted (RFC 9110, 5.6.6): charset="utf-8" is utf-8.
        if (media.Charset.HasValue && !HeaderUtilities.RemoveQuotes(media.Charset).Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        return type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }
}
