using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeviceOps.Cli;

/// <summary>One row of an `op apply` file: a PATCH item (with <c>id</c>) or a new operation (without).</summary>
public sealed record ApplyRow(int Line, bool IsCreate, JsonObject Item, string Raw);

/// <summary>
/// Reads an `op apply` input: CSV with a header row, or JSON lines (one object per line). Every
/// problem is reported with its line number, and nothing is applied while any remains.
/// </summary>
public sealed class ApplyFile
{
    /// <summary>The fields a row may carry: an operation's writable fields, its device effect fields, and a batch item's id and version.</summary>
    public static readonly IReadOnlySet<string> Fields = new HashSet<string>(StringComparer.Ordinal)
    {
        "id", "version", "device_id", "operation_type", "status", "operator_id", "description", "notes", "started_at", "completed_at",
        "operational_status", "location", "assigned_user", "configuration", "maintenance_notes", "next_maintenance", "justification",
    };

    private static readonly string[] CreateRequires = ["device_id", "operation_type"];

    private ApplyFile(bool isCsv, string? header, List<ApplyRow> rows, List<string> errors)
    {
        IsCsv = isCsv;
        Header = header;
        Rows = rows;
        Errors = errors;
    }

    public bool IsCsv { get; }

    /// <summary>The CSV header line, written again at the top of the failed-rows file.</summary>
    public string? Header { get; }

    public IReadOnlyList<ApplyRow> Rows { get; }

    /// <summary>"line N: …" for every bad line.</summary>
    public IReadOnlyList<string> Errors { get; }

    public static ApplyFile Read(string path, string text)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        var isCsv = extension switch
        {
            ".csv" => true,
            ".jsonl" or ".ndjson" or ".json" => false,
            _ => !text.TrimStart().StartsWith('{'),
        };
        return isCsv ? ReadCsv(text) : ReadJsonLines(text);
    }

    private static ApplyFile ReadJsonLines(string text)
    {
        var rows = new List<ApplyRow>();
        var errors = new List<string>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var number = i + 1;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException ex)
            {
                errors.Add($"line {number}: not valid JSON ({ex.Message.Split(" LineNumber", 2)[0]})");
                continue;
            }
            if (node is not JsonObject item)
            {
                errors.Add($"line {number}: expected a JSON object, found {node?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}");
                continue;
            }
            var unknown = item.Select(p => p.Key).Where(k => !Fields.Contains(k)).ToList();
            if (unknown.Count > 0)
            {
                errors.Add($"line {number}: unknown field(s) {string.Join(", ", unknown.Select(u => $"\"{u}\""))}");
                continue;
            }
            if (Check(number, item, errors) is { } row)
            {
                rows.Add(row with { Raw = line });
            }
        }
        if (rows.Count == 0 && errors.Count == 0)
        {
            errors.Add("line 1: the file has no rows");
        }
        return new ApplyFile(false, null, rows, errors);
    }

    private static ApplyFile ReadCsv(string text)
    {
        var rows = new List<ApplyRow>();
        var errors = new List<string>();
        var records = CsvRecords(text, errors);
        if (records.Count == 0)
        {
            errors.Add("line 1: the file is empty; expected a header row such as id,status,location");
            return new ApplyFile(true, null, rows, errors);
        }
        var (headerLine, header, headerRaw) = records[0];
        var columns = header.Select(h => h.Trim()).ToArray();
        var bad = false;
        foreach (var (column, index) in columns.Select((c, i) => (c, i)))
        {
            if (!Fields.Contains(column) && !(column.StartsWith("configuration.", StringComparison.Ordinal) && column.Length > "configuration.".Length))
            {
                errors.Add($"line {headerLine}: unknown column \"{column}\" (known: {string.Join(", ", Fields)}, configuration.KEY)");
                bad = true;
            }
            else if (Array.IndexOf(columns, column) != index)
            {
                errors.Add($"line {headerLine}: column \"{column}\" appears twice");
                bad = true;
            }
        }
        if (bad)
        {
            return new ApplyFile(true, headerRaw, rows, errors);
        }
        foreach (var (line, values, raw) in records.Skip(1))
        {
            if (values.Length == 1 && values[0].Length == 0)
            {
                continue;
            }
            if (values.Length != columns.Length)
            {
                errors.Add($"line {line}: expected {columns.Length} fields as in the header, found {values.Length}");
                continue;
            }
            var item = new JsonObject();
            var rowOk = true;
            for (var c = 0; c < columns.Length; c++)
            {
                var value = values[c];
                if (value.Length == 0)
                {
                    continue;
                }
                var column = columns[c];
                switch (column)
                {
                    case "id":
                        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id <= 0)
                        {
                            errors.Add($"line {line}: id \"{value}\" is not a positive integer");
                            rowOk = false;
                        }
                        else
                        {
                            item["id"] = id;
                        }
                        break;
                    case "configuration":
                        try
                        {
                            if (JsonNode.Parse(value) is JsonObject configuration)
                            {
                                Merge(item, configuration);
                            }
                            else
                            {
                                errors.Add($"line {line}: configuration must be a JSON object");
                                rowOk = false;
                            }
                        }
                        catch (JsonException)
                        {
                            errors.Add($"line {line}: configuration is not valid JSON");
                            rowOk = false;
                        }
                        break;
                    default:
                        if (column.StartsWith("configuration.", StringComparison.Ordinal))
                        {
                            Merge(item, new JsonObject { [column["configuration.".Length..]] = Cli.ScalarValue(value) });
                        }
                        else
                        {
                            item[column] = value;
                        }
                        break;
                }
            }
            if (rowOk && Check(line, item, errors) is { } row)
            {
                rows.Add(row with { Raw = raw });
            }
        }
        if (rows.Count == 0 && errors.Count == 0)
        {
            errors.Add($"line {headerLine}: the file has a header but no rows");
        }
        return new ApplyFile(true, headerRaw, rows, errors);
    }

    private static void Merge(JsonObject item, JsonObject configuration)
    {
        if (item["configuration"] is not JsonObject target)
        {
            item["configuration"] = target = new JsonObject();
        }
        foreach (var (key, value) in configuration)
        {
            target[key] = value?.DeepClone();
        }
    }

    /// <summary>What the server would refuse for sure, said with the line number before anything is sent.</summary>
    private static ApplyRow? Check(int line, JsonObject item, List<string> errors)
    {
        if (item.TryGetPropertyValue("id", out var idNode))
        {
            if (idNode is not JsonValue idValue || idValue.GetValueKind() != JsonValueKind.Number || !idValue.TryGetValue<int>(out var id) || id <= 0)
            {
                errors.Add($"line {line}: id must be a positive integer");
                return null;
            }
            return new ApplyRow(line, false, item, "");
        }
        var missing = CreateRequires.Where(f => item[f] is null).ToList();
        if (missing.Count > 0)
        {
            errors.Add($"line {line}: a row without id opens a new operation and needs {string.Join(" and ", missing)}");
            return null;
        }
        if (item.ContainsKey("version"))
        {
            errors.Add($"line {line}: version only applies to a row with id");
            return null;
        }
        return new ApplyRow(line, true, item, "");
    }

    /// <summary>RFC 4180 records with the line each starts on; a quoted field may span lines.</summary>
    private static List<(int Line, string[] Values, string Raw)> CsvRecords(string text, List<string> errors)
    {
        var records = new List<(int, string[], string)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var start = 1;
        var rawStart = 0;
        var quoted = false;
        var i = 0;
        if (text.StartsWith('\uFEFF'))
        {
            i = rawStart = 1;
        }
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i++;
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    if (c == '\n')
                    {
                        line++;
                    }
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0:
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    field.Clear();
                    records.Add((start, fields.ToArray(), text[rawStart..i].TrimEnd('\r')));
                    fields.Clear();
                    line++;
                    start = line;
                    rawStart = i + 1;
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        if (quoted)
        {
            errors.Add($"line {start}: a quoted field is not closed");
        }
        else if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            records.Add((start, fields.ToArray(), text[rawStart..].TrimEnd('\r', '\n')));
        }
        return records;
    }
}
