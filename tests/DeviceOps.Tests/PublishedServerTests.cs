using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeviceOps.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeviceOps.Tests;

/// <summary>
/// The published server as a user runs it: a process of its own on a real socket, its store in its
/// working folder (or a PostgreSQL database of its own), its admin command run beside it. What the
/// in-process tests cannot see — command-line parsing, the printed demo token, start-up migration,
/// a restart on the same data, the packaged OpenAPI document and docs page — is checked here.
/// </summary>
public sealed partial class PublishedServerTests(PublishedServerFixture server, ITestOutputHelper output)
    : IClassFixture<PublishedServerFixture>, IAsyncLifetime
{
    private const string SeedOperation = "/api/v1/inventory_device_operation/123/";

    private ServerHome _home = null!;

    public async Task InitializeAsync() => _home = await ServerHome.CreateAsync(server);

    public async Task DisposeAsync()
    {
        await _home.DisposeAsync();
        output.WriteLine(_home.Transcript());
    }

    [GeneratedRegex(@"dop_[A-Za-z0-9_\-]{20,}")]
    private static partial Regex TokenPattern();

    [GeneratedRegex(@"open operation (\d+)")]
    private static partial Regex DemoOperationPattern();

    [GeneratedRegex(@"Token (\d+) for ")]
    private static partial Regex CreatedTokenPattern();

    [Fact]
    public async Task DemoPrintsATokenWithWhichTheSeedCurlWorksOverASocket()
    {
        await using var process = await _home.StartAsync(["--demo"]);
        var token = (await process.WaitForOutputAsync(TokenPattern())).Value;
        var operation = await process.WaitForOutputAsync(DemoOperationPattern());
        Assert.Equal("123", operation.Groups[1].Value);
        Assert.Contains($"curl -H \"Authorization: Bearer {token}\" {process.BaseAddress}api/v1/inventory_device_operation/123/", process.Output, StringComparison.Ordinal);
        Assert.Contains($"Web console:  {process.BaseAddress}  (paste the token to sign in)", process.Output, StringComparison.Ordinal);
        using var client = process.Client(token);

        var response = await client.PutAsync(SeedOperation, Api.Json(Api.SeedRequest));

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        var body = JsonNode.Parse(text)!.AsObject();
        foreach (var (field, _) in JsonNode.Parse(Api.SeedResponse)!.AsObject())
        {
            Assert.True(body.ContainsKey(field), $"response lacks {field}: {text}");
        }
        Assert.Equal(123, body["id"]!.GetValue<int>());
        Assert.Equal("completed", body["status"]!.GetValue<string>());
        Assert.Equal("maintenance", body["operational_status"]!.GetValue<string>());
        Assert.Equal("IT Infrastructure", body["organization"]!.GetValue<string>());
        Assert.Equal("2.1.4", body["configuration"]!["firmware_version"]!.GetValue<string>());
        Assert.Equal("admin@company.com", body["updated_by"]!.GetValue<string>());

        var withoutSlash = await client.PutAsync(SeedOperation.TrimEnd('/'), Api.Json(Api.SeedRequest));

        Assert.True(withoutSlash.StatusCode == HttpStatusCode.OK, $"{(int)withoutSlash.StatusCode}: {await withoutSlash.Content.ReadAsStringAsync()}");
        Assert.Equal("maintenance", (await withoutSlash.BodyAsync())["operational_status"]!.GetValue<string>());
    }

    [Fact]
    public async Task DataSurvivesAGracefulRestartOnTheSameStore()
    {
        string token;
        await using (var first = await _home.StartAsync(["--demo"]))
        {
            token = (await first.WaitForOutputAsync(TokenPattern())).Value;
            using var client = first.Client(token);
            var put = await client.PutAsync(SeedOperation, Api.Json(Api.SeedRequest));
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());

            Assert.Equal(0, await first.StopAsync());
        }
        if (_home.Database is null)
        {
            Assert.True(File.Exists(_home.DefaultSqliteFile), $"the default store {_home.DefaultSqliteFile} was not made");
        }

        await using var second = await _home.StartAsync();

        using var again = second.Client(token);
        var stored = await again.GetJsonAsync(SeedOperation);
        Assert.Equal("completed", stored["status"]!.GetValue<string>());
        Assert.Equal("2024-01-15T11:30:00Z", stored["completed_at"]!.GetValue<string>());
        Assert.Equal("maintenance", stored["operational_status"]!.GetValue<string>());
        Assert.Equal("Building A - Floor 2", stored["location"]!.GetValue<string>());
        Assert.Equal("john.doe@company.com", stored["assigned_user"]!.GetValue<string>());
        Assert.Equal("standard", stored["configuration"]!["alert_level"]!.GetValue<string>());
        Assert.Equal("2.1.4", stored["configuration"]!["firmware_version"]!.GetValue<string>());
        var statusChange = stored["operational_history"]!.AsArray().Select(e => e!.AsObject())
            .First(e => e["action"]!.GetValue<string>() == "status_change");
        Assert.Equal("active", statusChange["from_status"]!.GetValue<string>());
        Assert.Equal("maintenance", statusChange["to_status"]!.GetValue<string>());
        Assert.DoesNotContain("demo data is ready", second.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenCommandMakesAScopedTokenTheServerHonoursUntilRevoked()
    {
        var created = await _home.RunCommandAsync("token", "create", "--user", "ops@example.com", "--scopes", "operations:read");

        Assert.True(created.ExitCode == 0, created.StandardError);
        var secret = created.StandardOutput.Split('\n')[0].Trim();
        Assert.Matches(TokenPattern(), secret);
        var id = CreatedTokenPattern().Match(created.StandardError).Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(id), created.StandardError);

        await using var process = await _home.StartAsync();
        using var client = process.Client(secret);
        var list = await client.GetAsync(Api.Operations);
        Assert.True(list.StatusCode == HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
        Assert.NotNull((await list.BodyAsync())["results"]);
        var put = await client.PutAsync(SeedOperation, Api.Json(Api.SeedRequest));
        await put.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");

        var revoked = await _home.RunCommandAsync("token", "revoke", id);

        Assert.True(revoked.ExitCode == 0, revoked.StandardError);
        var after = await client.GetAsync(Api.Operations);
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Contains(after.Headers.WwwAuthenticate, h => h.Scheme == "Bearer" && h.Parameter?.Contains("invalid_token", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task BootstrapTokenFromTheEnvironmentIsAnAdminToken()
    {
        var secret = $"bootstrap-{Guid.NewGuid():N}";
        await using var process = await _home.StartAsync(environment: new Dictionary<string, string> { ["DEVICEOPS_BOOTSTRAP_TOKEN"] = secret });
        var name = Seeder.Unique("Org");

        using var admin = process.Client(secret);
        var response = await admin.PostJsonAsync(Api.Organizations, new JsonObject { ["name"] = name });

        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        Assert.Equal(name, (await response.BodyAsync())["name"]!.GetValue<string>());
        using var anonymous = process.Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostJsonAsync(Api.Organizations, new JsonObject { ["name"] = Seeder.Unique("Org") })).StatusCode);
    }

    [Fact]
    public async Task HealthMetricsOpenApiAndDocsAnswerWithoutAToken()
    {
        await using var process = await _home.StartAsync();
        using var client = process.Client();

        // Scraped once before the requests, as Prometheus does: from the first scrape on, the
        // exporter listens to what it was told to, and every request after pays for it.
        var before = HealthzCount(await client.GetStringAsync("/metrics"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);

        var metrics = await client.GetStringAsync("/metrics");
        Assert.Equal(before + 1, HealthzCount(metrics));
        // The runtime's meters are there, read when scraped; its private ones (Kestrel's QUIC, on a
        // real socket) are not, nor ASP.NET Core's meters of each request, connection and buffer
        // (the HTTP middleware's series count requests once), nor the event counters' listener.
        Assert.Contains("system_runtime_dotnet_gc_collections", metrics, StringComparison.Ordinal);
        Assert.DoesNotMatch("(?m)^private_", metrics);
        Assert.DoesNotMatch("(?m)^microsoft_aspnetcore_", metrics);
        Assert.DoesNotMatch("(?m)^prometheus_net_eventcounteradapter_", metrics);

        var document = await client.GetJsonAsync("/openapi/v1.json");
        Assert.StartsWith("3.1", document["openapi"]!.GetValue<string>(), StringComparison.Ordinal);
        var put = document["paths"]?["/api/v1/inventory_device_operation/{id}/"]?["put"];
        Assert.True(put is JsonObject, "the document has no PUT /api/v1/inventory_device_operation/{id}/");

        var docs = await client.GetAsync("/docs/");
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Equal("text/html", docs.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<html", await docs.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The HTTP middleware's count of /healthz answered 200 (the start's probes among them).</summary>
    private static int HealthzCount(string metrics)
    {
        var line = System.Text.RegularExpressions.Regex.Match(metrics,
            """(?m)^http_requests_received_total\{code="200",method="GET",controller="",action="",endpoint="/healthz"\} (\d+)$""");
        Assert.True(line.Success, "/metrics counts no /healthz");
        return int.Parse(line.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task ThePublishedServerCarriesTheWebConsoleWhateverItsWorkingDirectory()
    {
        // The home folder is the working directory and holds no files of the console: they must
        // come from the server's assembly.
        await using var process = await _home.StartAsync();
        using var client = process.Client();

        var shell = await client.GetAsync("/devices/DEV-001");
        var script = await client.GetAsync("/console/device.js");

        Assert.Equal(HttpStatusCode.OK, shell.StatusCode);
        Assert.Contains("<title>DeviceOps console</title>", await shell.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(shell.Headers.Contains("Content-Security-Policy"));
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Contains("export async function devicePage", await script.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
