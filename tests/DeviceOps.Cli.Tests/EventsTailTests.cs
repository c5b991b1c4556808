using System.Globalization;
using System.Text.Json.Nodes;
using DeviceOps.Client;

namespace DeviceOps.Cli.Tests;

/// <summary>
/// <c>deviceops events tail</c> (one part of <see cref="CliTests"/>, so it shares its server) in-process against the published server: live events as JSON
/// lines, resuming after a cursor, a dropped connection resumed without gaps or repeats, and a
/// refused token.
/// </summary>
public sealed partial class CliTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>A device of a new organization with one open operation on it.</summary>
    private static async Task<(string Device, Operation Operation)> SeedWithOperationAsync(DeviceOpsClient admin)
    {
        var organization = (await admin.CreateOrganizationAsync(Unique("Org"))).Name;
        var code = Unique("DEV");
        await admin.CreateDeviceAsync(new DeviceWrite(code, $"Switch {code}", Unique("SN"), "network_switch", organization,
            OperationalStatus: "active", Location: "Warehouse A"));
        var operation = await admin.CreateOperationAsync(new OperationWrite(code, "maintenance", "in_progress"));
        return (code, operation);
    }

    private static List<JsonObject> Lines(string output) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => JsonNode.Parse(l)!.AsObject())];

    [Fact]
    public async Task TailPrintsTheNextChangesOfADeviceAsJsonLinesInOrderAndExitsAfterCount()
    {
        using var admin = server.Client();
        var (device, operation) = await SeedWithOperationAsync(admin);
        var streaming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var tail = RunAsync(["events", "tail", "--count", "2", "--device", device, "--output", "json"],
            handler: () => new WatchingHandler(streaming));
        await streaming.Task.WaitAsync(Patience);
        await admin.UpdateOperationAsync(operation.Id, new OperationWrite(Location: "Rack 1"));
        await admin.UpdateOperationAsync(operation.Id, new OperationWrite(Location: "Rack 2"));
        var run = await tail.WaitAsync(Patience);

        Assert.True(run.ExitCode == 0, run.ToString());
        var events = Lines(run.Out);
        Assert.Equal(["device.relocated", "device.relocated"], events.Select(e => e["type"]!.GetValue<string>()));
        Assert.Equal(["Rack 1", "Rack 2"], events.Select(e => e["to"]!.GetValue<string>()));
        Assert.Equal(["Warehouse A", "Rack 1"], events.Select(e => e["from"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal(device, e["device_id"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal(operation.Id, e["operation_id"]!.GetValue<int>()));
        Assert.All(events, e => Assert.True(e.ContainsKey("justification")));
    }

    /// <summary>
    /// The device's relocation events once the feed shows <paramref name="count"/> of them. On
    /// PostgreSQL the feed holds back events while an older transaction anywhere on the server
    /// (another test's) is still running — that keeps it gap-free — so they may appear a moment
    /// after the writes that made them.
    /// </summary>
    private static async Task<EventPage> RelocationsAsync(DeviceOpsClient admin, string device, int count)
    {
        for (var attempt = 0; ; attempt++)
        {
            var page = await admin.ListEventsAsync(types: ["device.relocated"], deviceId: device);
            if (page.Results.Count >= count || attempt == 200)
            {
                return page;
            }
            await Task.Delay(25);
        }
    }

    [Fact]
    public async Task AfterACursorTheTailResumesBehindItAndTheTableShowsFromAndTo()
    {
        using var admin = server.Client();
        var (device, operation) = await SeedWithOperationAsync(admin);
        foreach (var rack in new[] { "Rack A", "Rack B", "Rack C" })
        {
            await admin.UpdateOperationAsync(operation.Id, new OperationWrite(Location: rack));
        }
        // Registering the device in Warehouse A was its first relocation.
        var page = await RelocationsAsync(admin, device, 4);
        Assert.Equal(["Warehouse A", "Rack A", "Rack B", "Rack C"], page.Results.Select(e => e.To!.GetValue<string>()));
        var first = page.Results[1].Cursor;

        var run = await RunAsync(["events", "tail", "--type", "device.relocated", "--device", device, "--after", first, "--count", "2", "-o", "json"])
            .WaitAsync(Patience);

        Assert.True(run.ExitCode == 0, run.ToString());
        var events = Lines(run.Out);
        Assert.Equal(["Rack B", "Rack C"], events.Select(e => e["to"]!.GetValue<string>()));
        Assert.Equal(page.Results.Skip(2).Select(e => e.Cursor), events.Select(e => e["cursor"]!.GetValue<string>()));

        var table = await RunAsync(["events", "tail", "--device", device, "--after", first, "--count", "2"]).WaitAsync(Patience);

        Assert.True(table.ExitCode == 0, table.ToString());
        var lines = table.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TIME", lines[0], StringComparison.Ordinal);
        Assert.Contains("PERFORMED_BY", lines[0], StringComparison.Ordinal);
        Assert.Contains("Rack A → Rack B", lines[1], StringComparison.Ordinal);
        Assert.Contains("device.relocated", lines[1], StringComparison.Ordinal);
        Assert.Contains(device, lines[1], StringComparison.Ordinal);
        Assert.Contains("Rack B → Rack C", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADroppedConnectionIsResumedFromTheLastEventSeenWithNothingMissedOrRepeated()
    {
        using var admin = server.Client();
        var (device, operation) = await SeedWithOperationAsync(admin);
        foreach (var rack in new[] { "Rack 1", "Rack 2", "Rack 3" })
        {
            await admin.UpdateOperationAsync(operation.Id, new OperationWrite(Location: rack));
        }
        // Registering the device in Warehouse A was its first relocation; the tail starts behind it.
        var page = await RelocationsAsync(admin, device, 4);
        var start = page.Results[0].Cursor;
        var racks = page.Results.Skip(1).ToList();
        var cutter = new CuttingHandler(messagesBeforeCut: 2);

        // The first connection delivers the opening heartbeat and one event, then breaks.
        var run = await RunAsync(["events", "tail", "--type", "device.relocated", "--device", device, "--after", start, "--count", "3", "-o", "json"],
            handler: () => cutter).WaitAsync(Patience);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(racks.Select(e => e.Cursor), Lines(run.Out).Select(e => e["cursor"]!.GetValue<string>()));
        Assert.Equal(["Rack 1", "Rack 2", "Rack 3"], Lines(run.Out).Select(e => e["to"]!.GetValue<string>()));
        Assert.Contains("connection lost", run.Error, StringComparison.Ordinal);
        Assert.Equal([start, racks[0].Cursor], cutter.LastEventIds);
    }

    [Fact]
    public async Task ARefusedTokenPrintsTheProblemAndExitsNonZero()
    {
        var variables = server.Variables("dop_not-a-real-token-0123456789");

        var fromNow = await RunAsync(["events", "tail", "--count", "1"], variables).WaitAsync(Patience);
        var resumed = await RunAsync(["events", "tail", "--after", "0-0", "--count", "1"], variables).WaitAsync(Patience);

        foreach (var run in new[] { fromNow, resumed })
        {
            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.Contains("error: Unauthorized (401", run.Error, StringComparison.Ordinal);
            Assert.Equal("", run.Out);
        }

        var badType = await RunAsync(["events", "tail", "--type", "device.exploded", "--after", "0-0"]).WaitAsync(Patience);
        Assert.True(badType.ExitCode == 1, badType.ToString());
        Assert.Contains("type:", badType.Error, StringComparison.Ordinal);
    }

    /// <summary>Signals once a request for the event stream has been answered.</summary>
    private sealed class WatchingHandler(TaskCompletionSource streaming) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.RequestUri!.AbsolutePath.EndsWith("/events/stream", StringComparison.Ordinal))
            {
                streaming.TrySetResult();
            }
            return response;
        }
    }

    /// <summary>Records each stream request's Last-Event-ID, and breaks the first stream after some messages.</summary>
    private sealed class CuttingHandler(int messagesBeforeCut) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _streams;

        public List<string?> LastEventIds { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (!request.RequestUri!.AbsolutePath.EndsWith("/events/stream", StringComparison.Ordinal))
            {
                return response;
            }
            LastEventIds.Add(request.Headers.TryGetValues("Last-Event-ID", out var values) ? values.Single() : null);
            if (++_streams == 1)
            {
                var body = new CuttingStream(await response.Content.ReadAsStreamAsync(cancellationToken), messagesBeforeCut);
                var content = new StreamContent(body);
                foreach (var header in response.Content.Headers)
                {
                    content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
                response.Content = content;
            }
            return response;
        }
    }

    /// <summary>Passes SSE bytes through up to the end of the Nth message, then fails as a lost connection does.</summary>
    private sealed class CuttingStream(Stream inner, int messages) : Stream
    {
        private readonly byte[] _pending = new byte[64 * 1024];
        private int _start;
        private int _end;
        private int _seen;
        private byte _previous;
        private bool _cut;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_start == _end)
            {
                if (_cut)
                {
                    throw new IOException("test: the connection was cut");
                }
                _start = 0;
                _end = await inner.ReadAsync(_pending, cancellationToken);
                if (_end == 0)
                {
                    return 0;
                }
                for (var i = 0; i < _end; i++)
                {
                    if (_pending[i] == '\n' && _previous == '\n' && ++_seen == messages)
                    {
                        _end = i + 1;
                        _cut = true;
                        break;
                    }
                    _previous = _pending[i];
                }
            }
            var count = Math.Min(buffer.Length, _end - _start);
            _pending.AsMemory(_start, count).CopyTo(buffer);
            _start += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
