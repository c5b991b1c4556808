using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeviceOps.Client;

/// <summary>
/// An RFC 9457 problem the server answered with, as an exception: the HTTP status, the stable
/// <see cref="Code"/>, title, detail, field errors and the request id to quote to an operator.
/// </summary>
public class DeviceOpsProblemException : Exception
{
    public DeviceOpsProblemException()
    {
    }

    public DeviceOpsProblemException(string message) : base(message)
    {
    }

    public DeviceOpsProblemException(string message, Exception innerException) : base(message, innerException)
    {
    }

    internal DeviceOpsProblemException(HttpStatusCode status, JsonObject? body, string? fallbackText)
        : base(Describe(status, body, fallbackText))
    {
        Status = status;
        Body = body;
        Code = Text(body, "code") ?? $"http_{(int)status}";
        Title = Text(body, "title") ?? status.ToString();
        Detail = Text(body, "detail") ?? (body is null && !string.IsNullOrWhiteSpace(fallbackText) ? Trim(fallbackText) : null);
        RequestId = Text(body, "request_id");
        Errors = ReadErrors(body);
        AllowedNextStates = body?["allowed_next_states"] is JsonArray allowed
            ? [.. allowed.Select(a => a?.GetValue<string>() ?? "")]
            : [];
        FailedItems = body?["failed_items"] is JsonArray failed
            ? [.. failed.OfType<JsonObject>().Select(FailedItem.Read)]
            : [];
    }

    /// <summary>The HTTP status, e.g. 409.</summary>
    public HttpStatusCode Status { get; }

    /// <summary>The stable machine code, e.g. <c>invalid_transition</c>.</summary>
    public string Code { get; } = "";

    public string Title { get; } = "";

    public string? Detail { get; }

    /// <summary>The server's request id (<c>X-Request-Id</c>), which its logs and history carry.</summary>
    public string? RequestId { get; }

    /// <summary>Every bad field and its messages, for a validation failure; empty otherwise.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Errors { get; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>For a refused status move (409 <c>invalid_transition</c>): where the status may go instead.</summary>
    public IReadOnlyList<string> AllowedNextStates { get; } = [];

    /// <summary>For a failed batch: every failing item by its index in the request.</summary>
    public IReadOnlyList<FailedItem> FailedItems { get; } = [];

    /// <summary>The whole problem body, for extension members this type does not name.</summary>
    public JsonObject? Body { get; }

    private static string Describe(HttpStatusCode status, JsonObject? body, string? fallback)
    {
        var title = Text(body, "title") ?? status.ToString();
        var detail = Text(body, "detail") ?? (body is null && !string.IsNullOrWhiteSpace(fallback) ? Trim(fallback) : null);
        return detail is null ? $"{(int)status} {title}" : $"{(int)status} {title}: {detail}";
    }

    private static string Trim(string text) => text.Length > 300 ? text[..300] + "…" : text.Trim();

    internal static string? Text(JsonObject? body, string name) =>
        body?[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static Dictionary<string, IReadOnlyList<string>> ReadErrors(JsonObject? body)
    {
        var errors = new Dictionary<string, IReadOnlyList<string>>();
        if (body?["errors"] is JsonObject fields)
        {
            foreach (var (field, messages) in fields)
            {
                errors[field] = messages is JsonArray list
                    ? [.. list.Select(m => m is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : m?.ToJsonString() ?? "")]
                    : [messages?.ToString() ?? ""];
            }
        }
        return errors;
    }
}

/// <summary>One item a batch could not apply, by its index in the request.</summary>
public sealed record FailedItem(int Index, int? Id, int Status, string Code, IReadOnlyDictionary<string, IReadOnlyList<string>> Errors,
    string? Field, string? From, string? To, IReadOnlyList<string> AllowedNextStates)
{
    internal static FailedItem Read(JsonObject item)
    {
        var errors = new Dictionary<string, IReadOnlyList<string>>();
        if (item["errors"] is JsonObject fields)
        {
            foreach (var (field, messages) in fields)
            {
                errors[field] = messages is JsonArray list ? [.. list.Select(m => m?.ToString() ?? "")] : [messages?.ToString() ?? ""];
            }
        }
        return new(
            item["index"]?.GetValue<int>() ?? -1,
            item["id"] is JsonValue id ? id.GetValue<int>() : null,
            item["status"]?.GetValue<int>() ?? 0,
            DeviceOpsProblemException.Text(item, "code") ?? "",
            errors,
            DeviceOpsProblemException.Text(item, "field"),
            DeviceOpsProblemException.Text(item, "from"),
            DeviceOpsProblemException.Text(item, "to"),
            item["allowed_next_states"] is JsonArray allowed ? [.. allowed.Select(a => a?.ToString() ?? "")] : []);
    }

    /// <summary>One line saying why the item failed.</summary>
    public string Describe()
    {
        if (Errors.Count > 0)
        {
            return string.Join("; ", Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"));
        }
        if (Code == "invalid_transition")
        {
            return $"{Field} cannot move from {From} to {To} (allowed: {(AllowedNextStates.Count == 0 ? "none" : string.Join(", ", AllowedNextStates))})";
        }
        if (Code == "precondition_failed")
        {
            return "version is older than the current ETag";
        }
        return $"{Status} {Code}";
    }
}
