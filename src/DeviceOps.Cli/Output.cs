using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeviceOps.Cli;

public enum OutputFormat
{
    Table,
    Json,
    Csv,
}

/// <summary>Prints results as a table for people, or as JSON or CSV for scripts.</summary>
public sealed class Output(TextWriter writer, OutputFormat format)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>A list: a table of <paramref name="columns"/>, a JSON array, or CSV of every scalar field.</summary>
    public void List(IEnumerable<JsonNode?> items, IReadOnlyList<string> columns, int? total = null)
    {
        var rows = items.OfType<JsonObject>().ToList();
        switch (format)
        {
            case OutputFormat.Json:
                writer.WriteLine(new JsonArray([.. rows.Select(r => r.DeepClone())]).ToJsonString(Indented));
                break;
            case OutputFormat.Csv:
                var all = rows.SelectMany(r => r.Where(p => p.Value is not JsonArray || p.Key != "operational_history").Select(p => p.Key))
                    .Where(k => k != "operational_history").Distinct().ToList();
                writer.WriteLine(string.Join(',', all.Select(Csv)));
                foreach (var row in rows)
                {
                    writer.WriteLine(string.Join(',', all.Select(c => Csv(Cell(row[c])))));
                }
                break;
            default:
                Table(columns, [.. rows.Select(r => columns.Select(c => Cell(r[c])).ToArray())]);
                if (total is { } count && count > rows.Count)
                {
                    writer.WriteLine($"({rows.Count} of {count}; use --limit and --offset for more)");
                }
                break;
        }
    }

    /// <summary>One object: field/value lines, or its JSON, or a one-row CSV.</summary>
    public void Item(JsonObject item)
    {
        switch (format)
        {
            case OutputFormat.Json:
                writer.WriteLine(item.ToJsonString(Indented));
                break;
            case OutputFormat.Csv:
                List([item], []);
                break;
            default:
                var fields = item.Where(p => p.Key != "operational_history").ToList();
                var width = fields.Count == 0 ? 0 : fields.Max(p => p.Key.Length);
                foreach (var (name, value) in fields)
                {
                    writer.WriteLine($"{name.PadRight(width)}  {Cell(value)}");
                }
                if (item["operational_history"] is JsonArray { Count: > 0 } history)
                {
                    writer.WriteLine();
                    writer.WriteLine("latest history:");
                    Table(["timestamp", "action", "from_status", "to_status", "performed_by"],
                        [.. history.OfType<JsonObject>().Take(10).Select(h => new[] { Cell(h["timestamp"]), Cell(h["action"]), Cell(h["from_status"]), Cell(h["to_status"]), Cell(h["performed_by"]) })]);
                }
                break;
        }
    }

    public void Table(IReadOnlyList<string> columns, IReadOnlyList<string[]> rows)
    {
        const int maxWidth = 48;
        var widths = columns.Select((c, i) => Math.Min(maxWidth, Math.Max(c.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length)))).ToArray();
        string Fit(string text, int width) => text.Length > width ? text[..(width - 1)] + "…" : text.PadRight(width);
        writer.WriteLine(string.Join("  ", columns.Select((c, i) => Fit(c.ToUpperInvariant(), widths[i]))).TrimEnd());
        foreach (var row in rows)
        {
            writer.WriteLine(string.Join("  ", row.Select((cell, i) => Fit(cell, widths[i]))).TrimEnd());
        }
        if (rows.Count == 0)
        {
            writer.WriteLine("(none)");
        }
    }

    public static string Cell(JsonNode? node) => node switch
    {
        null => "",
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonArray array when array.All(a => a is JsonValue v && v.GetValueKind() == JsonValueKind.String) =>
            string.Join(' ', array.Select(a => a!.GetValue<string>())),
        _ => node.ToJsonString(),
    };

    public static string Csv(string text) =>
        text.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;

    public static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";

    public static string Join(IEnumerable<string> parts) => new StringBuilder().AppendJoin(", ", parts).ToString();
}
