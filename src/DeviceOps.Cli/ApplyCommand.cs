using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeviceOps.Client;

namespace DeviceOps.Cli;

/// <summary>
/// `op apply FILE`: applies a file of operation changes and creations in batch calls, resumable.
/// A state file beside the input (FILE.deviceops-state, JSON lines appended and flushed as the run
/// goes) records each chunk's Idempotency-Key before the chunk is sent and its outcome after; a
/// run started again skips finished chunks and sends an unfinished one again with the same key,
/// so the server replays it instead of applying it twice.
/// </summary>
public static class ApplyCommand
{
    public const string StateSuffix = ".deviceops-state";

    public static Command Create(CliEnvironment environment)
    {
        var file = new Argument<FileInfo>("file") { Description = "CSV with a header row, or JSON lines; a row with id changes that operation (PATCH), one without opens a new one" };
        var chunkSize = new Option<int>("--chunk-size") { Description = "Rows per batch call (1–10000)", DefaultValueFactory = _ => 500 };
        var command = new Command("apply", "Apply a file of operation changes in batches: resumable, with progress and a file of failed rows") { file, chunkSize };
        command.SetAction((parse, ct) => Cli.Guard(environment, () =>
            RunAsync(environment, parse.GetValue(file)!, parse.GetValue(chunkSize), ct)));
        return command;
    }

    private static async Task<int> RunAsync(CliEnvironment environment, FileInfo file, int chunkSize, CancellationToken cancellationToken)
    {
        if (chunkSize is < 1 or > 10_000)
        {
            throw new UsageException("--chunk-size must be between 1 and 10000.");
        }
        if (!file.Exists)
        {
            throw new UsageException($"{file.FullName} does not exist.");
        }
        var bytes = await File.ReadAllBytesAsync(file.FullName, cancellationToken);
        var input = ApplyFile.Read(file.Name, Encoding.UTF8.GetString(bytes));
        if (input.Errors.Count > 0)
        {
            environment.Error.WriteLine($"error: {file.Name} has {input.Errors.Count} bad line(s); nothing was applied:");
            foreach (var error in input.Errors.Take(100))
            {
                environment.Error.WriteLine($"  {file.Name}: {error}");
            }
            if (input.Errors.Count > 100)
            {
                environment.Error.WriteLine($"  … and {input.Errors.Count - 100} more");
            }
            return 2;
        }

        var chunks = Chunk(input.Rows, chunkSize);
        var state = ApplyState.Open(file.FullName + StateSuffix, Convert.ToHexStringLower(SHA256.HashData(bytes)), chunkSize, input.Rows.Count);
        using var client = Cli.Connect(environment);
        var progress = new Progress(environment, input.Rows.Count);
        var byLine = input.Rows.ToDictionary(r => r.Line);
        var skipped = 0;
        var replayed = 0;
        var clock = Stopwatch.StartNew();
        using (state)
        {
            foreach (var (chunk, index) in chunks.Select((c, i) => (c, i)))
            {
                if (state.IsDone(index))
                {
                    skipped++;
                    progress.Skipped(chunk.Count);
                    continue;
                }
                try
                {
                    replayed += await ApplyChunkAsync(client, state, index, chunk, byLine, cancellationToken) ? 1 : 0;
                }
                catch (OperationCanceledException)
                {
                    progress.Done();
                    environment.Error.WriteLine($"interrupted in chunk {index + 1} of {chunks.Count}; run the same command again to resume (state: {state.Path}).");
                    return 130;
                }
                catch (DeviceOpsProblemException problem)
                {
                    // Not about the rows (a token, a limit, the server): stop; a later run resumes here.
                    progress.Done();
                    Cli.Report(environment.Error, problem);
                    environment.Error.WriteLine($"stopped in chunk {index + 1} of {chunks.Count}; fix the cause and run the same command again to resume (state: {state.Path}).");
                    return 1;
                }
                catch (HttpRequestException network)
                {
                    progress.Done();
                    environment.Error.WriteLine($"error: cannot reach the server: {network.Message}");
                    environment.Error.WriteLine($"stopped in chunk {index + 1} of {chunks.Count}; run the same command again to resume (state: {state.Path}).");
                    return 1;
                }
                progress.Chunk(index + 1, chunks.Count, chunk.Count);
            }
            progress.Done();
        }

        var failed = state.Failures.OrderBy(f => f.Key).ToList();
        var applied = input.Rows.Count - failed.Count;
        var summary = new StringBuilder().Append(CultureInfo.InvariantCulture, $"{applied} of {input.Rows.Count} rows applied, {failed.Count} failed, in {chunks.Count} chunk(s) ({Output.Seconds(clock.Elapsed)})");
        if (skipped > 0)
        {
            summary.Append(CultureInfo.InvariantCulture, $"; {skipped} chunk(s) were already done by an earlier run");
        }
        if (replayed > 0)
        {
            summary.Append(CultureInfo.InvariantCulture, $"; {replayed} chunk(s) interrupted earlier were replayed by the server, not applied again");
        }
        environment.Out.WriteLine(summary.Append('.').ToString());
        if (failed.Count == 0)
        {
            return 0;
        }
        foreach (var (line, message) in failed.Take(100))
        {
            environment.Error.WriteLine($"  {file.Name}: line {line}: {message}");
        }
        var failedFile = FailedPath(file.FullName);
        var output = new StringBuilder();
        if (input.Header is not null)
        {
            output.Append(input.Header).Append('\n');
        }
        foreach (var (line, _) in failed)
        {
            output.Append(byLine[line].Raw).Append('\n');
        }
        await File.WriteAllTextAsync(failedFile, output.ToString(), cancellationToken);
        environment.Out.WriteLine($"The failed rows are in {failedFile}; fix them and apply that file.");
        return 1;
    }

    public static string FailedPath(string input) =>
        Path.Combine(Path.GetDirectoryName(input)!, Path.GetFileNameWithoutExtension(input) + ".failed" + Path.GetExtension(input));

    /// <summary>Consecutive rows of one kind (changes or creations), at most <paramref name="size"/> a chunk: the same file always chunks the same way.</summary>
    private static List<List<ApplyRow>> Chunk(IReadOnlyList<ApplyRow> rows, int size)
    {
        var chunks = new List<List<ApplyRow>>();
        foreach (var row in rows)
        {
            if (chunks.Count == 0 || chunks[^1].Count == size || chunks[^1][0].IsCreate != row.IsCreate)
            {
                chunks.Add([]);
            }
            chunks[^1].Add(row);
        }
        return chunks;
    }

    /// <summary>
    /// Sends one chunk until it is applied. A batch is all or nothing: when items fail, they are
    /// recorded as failed rows and the rest is sent again as a new request, with a new key.
    /// Returns whether the server replayed the chunk (it was applied by an interrupted run).
    /// </summary>
    private static async Task<bool> ApplyChunkAsync(DeviceOpsClient client, ApplyState state, int index, List<ApplyRow> chunk,
        Dictionary<int, ApplyRow> byLine, CancellationToken cancellationToken)
    {
        var (key, lines) = state.Pending(index) is { } pending
            ? (pending.Key, pending.Lines)
            : (null, chunk.Select(r => r.Line).Where(l => !state.Failures.ContainsKey(l)).ToList());
        while (true)
        {
            if (lines.Count == 0)
            {
                state.MarkDone(index);
                return false;
            }
            if (key is null)
            {
                key = Guid.NewGuid().ToString();
                state.Sending(index, key, lines);
            }
            var items = lines.Select(l => byLine[l].Item);
            try
            {
                var result = chunk[0].IsCreate
                    ? await client.CreateOperationsAsync(items, key, cancellationToken)
                    : await client.UpdateOperationsAsync(items, key, cancellationToken);
                state.MarkDone(index);
                return result.Replayed;
            }
            catch (DeviceOpsProblemException problem) when (problem.FailedItems.Count > 0)
            {
                var failures = problem.FailedItems.Where(f => f.Index >= 0 && f.Index < lines.Count)
                    .GroupBy(f => f.Index).ToDictionary(g => lines[g.Key], g => string.Join("; ", g.Select(f => f.Describe())));
                if (failures.Count == 0)
                {
                    throw;
                }
                state.Failed(index, failures);
                lines = [.. lines.Where(l => !failures.ContainsKey(l))];
                key = null;
            }
            catch (DeviceOpsProblemException problem) when (problem.Status is HttpStatusCode.BadRequest or HttpStatusCode.NotFound
                or HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableEntity)
            {
                // The whole chunk was refused without naming items (e.g. too large): its rows fail.
                var message = problem.Detail ?? problem.Title;
                state.Failed(index, lines.ToDictionary(l => l, _ => $"{(int)problem.Status} {problem.Code}: {message}"));
                state.MarkDone(index);
                return false;
            }
        }
    }

    /// <summary>Progress on stderr: a redrawn line with rate and ETA on a terminal, a plain line per chunk otherwise.</summary>
    private sealed class Progress(CliEnvironment environment, int total)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _done;
        private int _appliedThisRun;
        private bool _drawn;

        public void Skipped(int rows) => _done += rows;

        public void Chunk(int chunk, int chunks, int rows)
        {
            _done += rows;
            _appliedThisRun += rows;
            var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
            var rate = _appliedThisRun / seconds;
            var eta = rate > 0 ? TimeSpan.FromSeconds((total - _done) / rate) : TimeSpan.Zero;
            var text = string.Create(CultureInfo.InvariantCulture,
                $"{_done}/{total} rows ({100.0 * _done / total:0}%), chunk {chunk}/{chunks}, {rate:0} rows/s, ETA {eta.TotalSeconds:0} s");
            if (environment.IsTerminal)
            {
                const int width = 24;
                var filled = (int)Math.Round(width * (double)_done / total);
                environment.Error.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {text}   ");
                _drawn = true;
            }
            else
            {
                environment.Error.WriteLine(text);
            }
        }

        public void Done()
        {
            if (_drawn)
            {
                environment.Error.WriteLine();
                _drawn = false;
            }
        }
    }
}

/// <summary>
/// The state file of one input: a header naming the input's hash and chunk size, then one JSON
/// line per event — a chunk's key and rows before it is sent, rows that failed, a chunk done.
/// Each line is flushed to disk before the request it announces is sent.
/// </summary>
public sealed class ApplyState : IDisposable
{
    private readonly FileStream _stream;
    private readonly HashSet<int> _done = [];
    private readonly Dictionary<int, (string Key, List<int> Lines)> _pending = [];

    private ApplyState(string path, FileStream stream)
    {
        Path = path;
        _stream = stream;
    }

    public string Path { get; }

    /// <summary>Every failed row so far, by line, with why.</summary>
    public Dictionary<int, string> Failures { get; } = [];

    public static ApplyState Open(string path, string inputHash, int chunkSize, int rows)
    {
        var header = new JsonObject { ["input_sha256"] = inputHash, ["chunk_size"] = chunkSize, ["rows"] = rows };
        if (File.Exists(path))
        {
            var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
            JsonObject? first = null;
            try
            {
                first = lines.Count > 0 ? JsonNode.Parse(lines[0]) as JsonObject : null;
            }
            catch (JsonException)
            {
                // Reported below.
            }
            if (first is null || first["input_sha256"]?.ToString() != inputHash || first["chunk_size"]?.ToString() != chunkSize.ToString(CultureInfo.InvariantCulture))
            {
                throw new UsageException($"{path} belongs to another version of the input or another --chunk-size; " +
                    "resume with the same file and chunk size, or delete the state file to start over (rows it recorded as applied would be applied again).");
            }
            var state = new ApplyState(path, new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read));
            foreach (var line in lines.Skip(1))
            {
                JsonObject record;
                try
                {
                    record = JsonNode.Parse(line) as JsonObject ?? throw new JsonException();
                }
                catch (JsonException)
                {
                    // A line cut short by a crash: its event never completed.
                    continue;
                }
                state.Load(record);
            }
            return state;
        }
        var created = new ApplyState(path, new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read));
        created.Append(header);
        return created;
    }

    public bool IsDone(int chunk) => _done.Contains(chunk);

    public (string Key, List<int> Lines)? Pending(int chunk) => _pending.TryGetValue(chunk, out var pending) ? pending : null;

    public void Sending(int chunk, string key, List<int> lines)
    {
        Append(new JsonObject { ["chunk"] = chunk, ["key"] = key, ["lines"] = new JsonArray([.. lines.Select(l => (JsonNode)l)]) });
        _pending[chunk] = (key, lines);
    }

    public void Failed(int chunk, Dictionary<int, string> failures)
    {
        var array = new JsonArray();
        foreach (var (line, message) in failures)
        {
            array.Add(new JsonObject { ["line"] = line, ["error"] = message });
            Failures[line] = message;
        }
        Append(new JsonObject { ["chunk"] = chunk, ["failed"] = array });
        _pending.Remove(chunk);
    }

    public void MarkDone(int chunk)
    {
        Append(new JsonObject { ["chunk"] = chunk, ["done"] = true });
        _pending.Remove(chunk);
        _done.Add(chunk);
    }

    private void Load(JsonObject record)
    {
        var chunk = record["chunk"]!.GetValue<int>();
        if (record["done"] is not null)
        {
            _done.Add(chunk);
            _pending.Remove(chunk);
        }
        else if (record["failed"] is JsonArray failed)
        {
            foreach (var item in failed.OfType<JsonObject>())
            {
                Failures[item["line"]!.GetValue<int>()] = item["error"]?.ToString() ?? "";
            }
            _pending.Remove(chunk);
        }
        else if (record["key"] is { } key)
        {
            _pending[chunk] = (key.GetValue<string>(), [.. record["lines"]!.AsArray().Select(l => l!.GetValue<int>())]);
        }
    }

    private void Append(JsonObject record)
    {
        var bytes = Encoding.UTF8.GetBytes(record.ToJsonString() + "\n");
        _stream.Write(bytes);
        // On disk before the request goes out: a crash after sending must find the key.
        _stream.Flush(flushToDisk: true);
    }

    public void Dispose() => _stream.Dispose();
}
