using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeviceOps.Client;

namespace DeviceOps.Cli;

/// <summary><c>deviceops events tail</c>: the server's live change events, as they commit.</summary>
internal static class EventsCommand
{
    private static readonly DeviceOpsJsonContext Json = DeviceOpsJsonContext.Default;

    private static readonly string[] Columns = ["time", "type", "device", "change", "performed_by"];
    private static readonly int[] Widths = [20, 30, 16, 40, 0];

    public static Command Create(CliEnvironment environment)
    {
        var command = new Command("events", "Change events of devices and operations");

        var type = new Option<string[]>("--type") { Description = "Only these event types, comma-separated or repeated (e.g. device.relocated,device.status_changed)" };
        var device = new Option<string?>("--device") { Description = "Only events of this device_id (the inventory code)" };
        var after = new Option<string?>("--after") { Description = "Start after this cursor (an event's `cursor`); default: only events from now on" };
        var count = new Option<int?>("--count") { Description = "Exit 0 after this many events (default: run until Ctrl+C)" };
        var tail = new Command("tail", "Print change events live as they happen (Server-Sent Events; reconnects by itself without gaps)") { type, device, after, count };
        tail.SetAction((parse, ct) => Cli.Guard(environment, async () =>
        {
            var limit = parse.GetValue(count);
            if (limit is <= 0)
            {
                throw new UsageException("--count must be a positive number.");
            }
            var types = (parse.GetValue(type) ?? [])
                .SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .ToList();
            var deviceId = parse.GetValue(device);
            var format = Cli.Format(parse);
            using var client = Cli.Connect(environment);
            // A tail starts now unless asked to resume: the end of the feed is where the stream begins.
            var start = parse.GetValue(after) is { Length: > 0 } given
                ? given
                : await client.GetLatestEventCursorAsync(ct);
            var printer = new EventPrinter(environment.Out, format);
            var seen = 0;
            try
            {
                await foreach (var change in client.StreamEventsAsync(start, types, deviceId, ct))
                {
                    printer.Print(change);
                    if (limit is { } n && ++seen >= n)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl+C is how a tail ends.
            }
            return 0;
        }));
        command.Subcommands.Add(tail);
        return command;
    }

    /// <summary>Prints events one at a time: table rows under one header, CSV rows, or one JSON object per line.</summary>
    private sealed class EventPrinter(TextWriter writer, OutputFormat format)
    {
        private bool _headed;

        public void Print(ChangeEvent change)
        {
            string[] cells = [Time(change.OccurredAt), change.Type, change.DeviceId, Change(change), change.PerformedBy ?? ""];
            switch (format)
            {
                case OutputFormat.Json:
                    writer.WriteLine(Node(change).ToJsonString());
                    break;
                case OutputFormat.Csv:
                    if (!_headed)
                    {
                        writer.WriteLine(string.Join(',', Columns.Append("cursor")));
                    }
                    writer.WriteLine(string.Join(',', cells.Append(change.Cursor).Select(Output.Csv)));
                    break;
                default:
                    if (!_headed)
                    {
                        writer.WriteLine(Row([.. Columns.Select(c => c.ToUpperInvariant())]));
                    }
                    writer.WriteLine(Row(cells));
                    break;
            }
            _headed = true;
            writer.Flush();
        }

        private static string Row(string[] cells) =>
            string.Join("  ", cells.Select((cell, i) => Widths[i] == 0 ? cell
                : cell.Length > Widths[i] ? cell[..(Widths[i] - 1)] + "…" : cell.PadRight(Widths[i]))).TrimEnd();

        private static string Time(DateTimeOffset time) =>
            time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        /// <summary>"from → to" of a one-field change; "field: from → to; …" of a wider one.</summary>
        private static string Change(ChangeEvent change)
        {
            if (change.From is not null || change.To is not null)
            {
                return $"{Value(change.From)} → {Value(change.To)}";
            }
            if (change.Changes is not { Count: > 0 } changes)
            {
                return "";
            }
            return string.Join("; ", changes.Select(p => p.Value is JsonObject pair && (pair.ContainsKey("from") || pair.ContainsKey("to"))
                ? $"{p.Key}: {Value(pair["from"])} → {Value(pair["to"])}"
                : $"{p.Key}: {Value(p.Value)}"));
        }

        private static string Value(JsonNode? node) => node is null ? "∅" : Output.Cell(node);

        /// <summary>The event with every field, nulls included, as the server sent it.</summary>
        private static JsonObject Node(ChangeEvent change)
        {
            var node = (JsonObject)JsonSerializer.SerializeToNode(change, Json.ChangeEvent)!;
            var ordered = new JsonObject();
            foreach (var name in new[] { "id", "cursor", "type", "occurred_at", "device_id", "operation_id", "request_id", "performed_by", "from", "to", "changes", "justification" })
            {
                ordered[name] = node[name]?.DeepClone();
            }
            return ordered;
        }
    }
}
