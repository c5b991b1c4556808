using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using DeviceOps.Client;
using Xunit.Abstractions;

namespace DeviceOps.Cli.Tests;

/// <summary>
/// The deviceops tool run in-process (its entry point with arguments, output captured) against the
/// published server over a socket: every command, bulk apply under a low rate limit, an
/// interrupted apply resumed, and bad input files.
/// </summary>
public sealed partial class CliTests(CliServer server, ITestOutputHelper log) : IClassFixture<CliServer>
{
    private async Task<CliRun> RunAsync(string[] args, Dictionary<string, string?>? variables = null, Func<HttpMessageHandler>? handler = null,
        CancellationToken cancellationToken = default)
    {
        var vars = variables ?? server.Variables();
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        using var error = new StringWriter(CultureInfo.InvariantCulture);
        var environment = new CliEnvironment(output, error, name => vars.GetValueOrDefault(name), IsTerminal: false, handler);
        var code = await Cli.RunAsync(args, environment, cancellationToken);
        var run = new CliRun(code, output.ToString(), error.ToString());
        log.WriteLine($"$ deviceops {string.Join(' ', args)}\n{run}");
        return run;
    }

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    /// <summary>An organization and <paramref name="count"/> active devices of its own.</summary>
    private async Task<(string Organization, List<Device> Devices)> SeedAsync(int count = 1)
    {
        using var admin = server.Client();
        var organization = (await admin.CreateOrganizationAsync(Unique("Org"))).Name;
        var devices = new List<Device>();
        for (var i = 0; i < count; i++)
        {
            var code = Unique("DEV");
            devices.Add(await admin.CreateDeviceAsync(new DeviceWrite(code, $"Switch {code}", Unique("SN"), "network_switch", organization,
                OperationalStatus: "active", Location: "Warehouse A")));
        }
        return (organization, devices);
    }

    [Fact]
    public async Task LoginWritesAConfigFileOnlyItsOwnerCanReadAndLaterCommandsUseIt()
    {
        var configHome = server.NewFolder();
        var variables = new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = configHome, ["HOME"] = configHome };

        var login = await RunAsync(["login", "--url", server.BaseAddress.ToString(), "--token", CliServer.AdminToken], variables);

        Assert.True(login.ExitCode == 0, login.ToString());
        var file = Path.Combine(configHome, "deviceops", "config.json");
        Assert.True(File.Exists(file), login.ToString());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        var (organization, _) = await SeedAsync();
        var list = await RunAsync(["device", "list", "--organization", organization], variables);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("network_switch", (await RunAsync(["device", "list", "--organization", organization, "-o", "csv"], variables)).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutConfigurationACommandSaysWhatToSetAndExits2()
    {
        var empty = server.NewFolder();

        var run = await RunAsync(["op", "list"], new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = empty, ["HOME"] = empty });

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("DEVICEOPS_URL", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeviceCommandsCreateListShowAndUpdate()
    {
        var (organization, _) = await SeedAsync(0);
        var code = Unique("DEV");

        var created = await RunAsync(["device", "create", "--device-id", code, "--name", "Router R1", "--serial", Unique("SN"), "--type", "router",
            "--organization", organization, "--status", "active", "--location", "Rack 4", "--config", "monitoring_enabled=true", "-o", "json"]);

        Assert.True(created.ExitCode == 0, created.ToString());
        var device = JsonNode.Parse(created.Out)!;
        var id = device["id"]!.GetValue<int>();
        Assert.Equal(code, device["device_id"]!.GetValue<string>());
        Assert.True(device["configuration"]!["monitoring_enabled"]!.GetValue<bool>());

        var list = await RunAsync(["device", "list", "--organization", organization]);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(code, list.Out, StringComparison.Ordinal);
        Assert.StartsWith("ID", list.Out, StringComparison.Ordinal);

        var update = await RunAsync(["device", "update", id.ToString(CultureInfo.InvariantCulture), "--location", "Rack 9", "--status", "maintenance"]);
        Assert.True(update.ExitCode == 0, update.ToString());

        var show = await RunAsync(["device", "show", id.ToString(CultureInfo.InvariantCulture), "-o", "json"]);
        Assert.True(show.ExitCode == 0, show.ToString());
        var shown = JsonNode.Parse(show.Out)!;
        Assert.Equal("Rack 9", shown["location"]!.GetValue<string>());
        Assert.Equal("maintenance", shown["operational_status"]!.GetValue<string>());
    }

    [Fact]
    public async Task OpUpdateGetsModifiesAndPutsWithIfMatchAndRefusalsPrintTheProblem()
    {
        var (_, devices) = await SeedAsync();
        var code = devices[0].DeviceId;
        var created = await RunAsync(["op", "create", "--device", code, "--type", "maintenance", "--status", "in_progress", "--operator", "OP-456", "-o", "json"]);
        Assert.True(created.ExitCode == 0, created.ToString());
        var id = JsonNode.Parse(created.Out)!["id"]!.GetValue<int>().ToString(CultureInfo.InvariantCulture);

        var update = await RunAsync(["op", "update", id, "--status", "completed", "--operational-status", "maintenance",
            "--location", "Building A - Floor 2", "--note", "All systems functioning normally", "-o", "json"]);

        Assert.True(update.ExitCode == 0, update.ToString());
        var operation = JsonNode.Parse(update.Out)!;
        Assert.Equal("completed", operation["status"]!.GetValue<string>());
        Assert.Equal("OP-456", operation["operator_id"]!.GetValue<string>());
        Assert.Equal("All systems functioning normally", operation["notes"]!.GetValue<string>());
        Assert.Equal("maintenance", operation["operational_status"]!.GetValue<string>());
        Assert.Equal("Building A - Floor 2", operation["location"]!.GetValue<string>());

        var list = await RunAsync(["op", "list", "--device", code]);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("completed", list.Out, StringComparison.Ordinal);
        var show = await RunAsync(["op", "show", id]);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("latest history:", show.Out, StringComparison.Ordinal);

        var history = await RunAsync(["history", code, "-o", "json"]);
        Assert.True(history.ExitCode == 0, history.ToString());
        var entries = JsonNode.Parse(history.Out)!.AsArray();
        Assert.Contains(entries, e => e!["action"]!.GetValue<string>() == "status_change" && e["to_status"]!.GetValue<string>() == "maintenance");
        Assert.Contains(entries, e => e!["action"]!.GetValue<string>() == "relocation");

        var refused = await RunAsync(["op", "update", id, "--status", "in_progress"]);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("Invalid status transition (409 invalid_transition)", refused.Error, StringComparison.Ordinal);
        Assert.Contains("allowed next states", refused.Error, StringComparison.Ordinal);
        Assert.Contains("request id:", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", refused.Error, StringComparison.Ordinal);

        var invalid = await RunAsync(["op", "create", "--device", code, "--type", "Not A Slug!", "--status", "bogus"]);
        Assert.Equal(1, invalid.ExitCode);
        Assert.Contains("Validation failed", invalid.Error, StringComparison.Ordinal);
        Assert.Contains("status:", invalid.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenCommandsCreateListAndRevoke()
    {
        var user = $"{Unique("ops")}@example.com";

        var created = await RunAsync(["token", "create", "--user", user, "--scopes", "operations:read", "--rate-limit", "100", "--description", "cli test"]);

        Assert.True(created.ExitCode == 0, created.ToString());
        var secret = created.Out.Trim();
        Assert.StartsWith("dop_", secret, StringComparison.Ordinal);
        var list = await RunAsync(["token", "list", "--limit", "1000", "-o", "json"]);
        Assert.True(list.ExitCode == 0, list.ToString());
        var token = JsonNode.Parse(list.Out)!.AsArray().Single(t => t!["user"]!.GetValue<string>() == user)!;
        Assert.Equal(100, token["rate_limit_per_minute"]!.GetValue<int>());
        Assert.Null(token["token"]);
        Assert.Equal(0, (await RunAsync(["op", "list", "--limit", "1"], server.Variables(secret))).ExitCode);

        var revoked = await RunAsync(["token", "revoke", token["id"]!.GetValue<int>().ToString(CultureInfo.InvariantCulture)]);

        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        var after = await RunAsync(["op", "list"], server.Variables(secret));
        Assert.Equal(1, after.ExitCode);
        Assert.Contains("401", after.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyOf5000RowsUnderALowRateLimitFinishesThanksToRetries()
    {
        var (_, devices) = await SeedAsync(5);
        using var admin = server.Client();
        // 4 permits per 2 s window (the server runs with WindowSeconds=2): 20 chunks must wait.
        var limited = await admin.CreateTokenAsync(new TokenRequest("bulk@example.com", ["operations:read", "operations:write"], RateLimitPerMinute: 4));
        var tag = Unique("OP");
        var folder = server.NewFolder();
        var file = Path.Combine(folder, "open.csv");
        var csv = new StringBuilder("device_id,operation_type,status,operator_id,notes\n");
        for (var i = 0; i < 5000; i++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{devices[i % 5].DeviceId},inspection,pending,{tag},\"row {i}, quoted\"\n");
        }
        await File.WriteAllTextAsync(file, csv.ToString());

        // Spend the token's window first, so the first chunk meets a 429 however fast or slow
        // this machine is, and the client must wait out Retry-After.
        using (var raw = new HttpClient { BaseAddress = server.BaseAddress })
        {
            raw.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", limited.Token);
            for (var i = 0; i < 10 && (await raw.GetAsync("api/v1/inventory_device_operation/?limit=1")).StatusCode != System.Net.HttpStatusCode.TooManyRequests; i++)
            {
            }
        }
        var run = await RunAsync(["op", "apply", file, "--chunk-size", "250"], server.Variables(limited.Token));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("5000 of 5000 rows applied, 0 failed", run.Out, StringComparison.Ordinal);
        Assert.Contains("429", run.Error, StringComparison.Ordinal);
        var page = await admin.ListOperationsAsync(new ListOptions { Limit = 1, Filters = { ["operator_id"] = tag } });
        Assert.Equal(5000, page.Count);

        // Then change them all from a JSON lines file of PATCH items, under the same limit.
        var ids = new List<int>();
        for (var offset = 0; offset < 5000; offset += 1000)
        {
            ids.AddRange((await admin.ListOperationsAsync(new ListOptions { Limit = 1000, Offset = offset, Filters = { ["operator_id"] = tag } })).Results.Select(o => o.Id));
        }
        var patch = Path.Combine(folder, "start.jsonl");
        await File.WriteAllLinesAsync(patch, ids.Select(id => $"{{\"id\":{id},\"status\":\"scheduled\"}}"));

        var second = await RunAsync(["op", "apply", patch, "--chunk-size", "1000"], server.Variables(limited.Token));

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(5000, (await admin.ListOperationsAsync(new ListOptions { Limit = 1, Filters = { ["operator_id"] = tag, ["status"] = "scheduled" } })).Count);
    }

    [Fact]
    public async Task AnInterruptedApplyResumedAppliesNothingTwice()
    {
        var (_, devices) = await SeedAsync(2);
        var tag = Unique("OP");
        var folder = server.NewFolder();
        var file = Path.Combine(folder, "open.jsonl");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 1200).Select(i =>
            $"{{\"device_id\":\"{devices[i % 2].DeviceId}\",\"operation_type\":\"firmware_update\",\"operator_id\":\"{tag}\"}}"));
        using var interrupt = new CancellationTokenSource();

        // The second batch reaches the server and is applied, but the answer is lost: the run is interrupted.
        var first = await RunAsync(["op", "apply", file, "--chunk-size", "300"],
            handler: () => new InterruptingHandler(interrupt, afterBatches: 2), cancellationToken: interrupt.Token);

        Assert.Equal(130, first.ExitCode);
        Assert.Contains("run the same command again to resume", first.Error, StringComparison.Ordinal);
        using var admin = server.Client();
        Assert.Equal(600, (await admin.ListOperationsAsync(new ListOptions { Limit = 1, Filters = { ["operator_id"] = tag } })).Count);

        var resumed = await RunAsync(["op", "apply", file, "--chunk-size", "300"]);

        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("1200 of 1200 rows applied", resumed.Out, StringComparison.Ordinal);
        Assert.Contains("1 chunk(s) were already done", resumed.Out, StringComparison.Ordinal);
        Assert.Contains("1 chunk(s) interrupted earlier were replayed by the server", resumed.Out, StringComparison.Ordinal);
        Assert.Equal(1200, (await admin.ListOperationsAsync(new ListOptions { Limit = 1, Filters = { ["operator_id"] = tag } })).Count);
        var created = 0;
        foreach (var device in devices)
        {
            created += (await admin.ListHistoryAsync(new ListOptions { Limit = 1, Filters = { ["device_id"] = device.DeviceId, ["action"] = "operation_created" } })).Count;
        }
        Assert.Equal(1200, created);

        var again = await RunAsync(["op", "apply", file, "--chunk-size", "300"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("4 chunk(s) were already done", again.Out, StringComparison.Ordinal);
        Assert.Equal(1200, (await admin.ListOperationsAsync(new ListOptions { Limit = 1, Filters = { ["operator_id"] = tag } })).Count);
    }

    [Fact]
    public async Task RowsTheServerRefusesAreReportedByLineAndWrittenToAFailedFileWhileTheRestIsApplied()
    {
        var (_, devices) = await SeedAsync();
        using var admin = server.Client();
        var done = await admin.CreateOperationAsync(new OperationWrite(devices[0].DeviceId, "inspection", "completed"));
        var open = await admin.CreateOperationAsync(new OperationWrite(devices[0].DeviceId, "inspection", "pending"));
        var folder = server.NewFolder();
        var file = Path.Combine(folder, "changes.csv");
        await File.WriteAllTextAsync(file,
            "id,status,notes\n" +
            $"{open.Id},in_progress,started\n" +
            $"{done.Id},in_progress,reopen\n" +
            $"{open.Id},bogus,\n");

        var run = await RunAsync(["op", "apply", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("1 of 3 rows applied, 2 failed", run.Out, StringComparison.Ordinal);
        Assert.Contains("line 3: status cannot move from completed to in_progress", run.Error, StringComparison.Ordinal);
        Assert.Contains("line 4: status:", run.Error, StringComparison.Ordinal);
        var failed = await File.ReadAllLinesAsync(Path.Combine(folder, "changes.failed.csv"));
        Assert.Equal(["id,status,notes", $"{done.Id},in_progress,reopen", $"{open.Id},bogus,"], failed);
        Assert.Equal("in_progress", (await admin.GetOperationAsync(open.Id)).Status);
    }

    [Theory]
    [InlineData("bad.csv", "id,status,colour\n1,completed,red\n", "line 1: unknown column \"colour\"")]
    [InlineData("bad.csv", "id,status\n1,completed\nx,completed\n3\n,completed\n", "line 3: id \"x\" is not a positive integer|line 4: expected 2 fields|line 5: a row without id opens a new operation and needs device_id and operation_type")]
    [InlineData("bad.jsonl", "{\"id\":1,\"status\":\"completed\"}\n{\"id\":2,\n[1]\n{\"id\":-4}\n{\"id\":5,\"stauts\":\"x\"}\n", "line 2: not valid JSON|line 3: expected a JSON object|line 4: id must be a positive integer|line 5: unknown field(s) \"stauts\"")]
    [InlineData("empty.csv", "", "line 1: the file is empty")]
    public async Task ABadInputFileGetsLineNumberedErrorsAndNothingIsApplied(string name, string content, string expected)
    {
        var folder = server.NewFolder();
        var file = Path.Combine(folder, name);
        await File.WriteAllTextAsync(file, content);

        var run = await RunAsync(["op", "apply", file]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("nothing was applied", run.Error, StringComparison.Ordinal);
        foreach (var part in expected.Split('|'))
        {
            Assert.Contains(part, run.Error, StringComparison.Ordinal);
        }
        Assert.False(File.Exists(file + ".deviceops-state"), "a refused file must leave no state behind");
    }

    /// <summary>Passes requests through, and after the Nth batch call has been answered, loses the answer and interrupts the run.</summary>
    private sealed class InterruptingHandler(CancellationTokenSource interrupt, int afterBatches) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _batches;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.Method == HttpMethod.Post && ++_batches == afterBatches)
            {
                response.Dispose();
                await interrupt.CancelAsync();
                throw new OperationCanceledException(interrupt.Token);
            }
            return response;
        }
    }
}
