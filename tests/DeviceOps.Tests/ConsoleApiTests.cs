using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeviceOps.Devices;
using DeviceOps.Operations;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

/// <summary>
/// What the web console needs from the server: who a token is, the status rules as data, counts
/// for the overview, and the console's own files served with a strict Content-Security-Policy —
/// without disturbing the API, the documents and the probes.
/// </summary>
public sealed partial class ConsoleApiTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private static readonly string[] ReadScopes = ["devices:read", "operations:read"];
    private static readonly string[] OperationsOnly = ["operations:read"];

    private static string Email(string prefix) => $"{Seeder.Unique(prefix)}@example.com";

    private static JsonObject Next(DateTime when) =>
        new() { ["next_maintenance"] = when.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture) };

    // ---- GET /api/v1/token/me/ ---------------------------------------------------------------

    [Fact]
    public async Task TokenMeAnswersTheCallersUserScopesAndOrganizationsButNotItsSecret()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var user = Email("me");
        var secret = await factory.TokenAsync(user, ReadScopes, [organization]);
        using var client = factory.WithToken(secret);

        var response = await client.GetAsync("/api/v1/token/me/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var me = await response.BodyAsync();
        Assert.Equal(user, me["user"]!.GetValue<string>());
        Assert.Equal(ReadScopes, me["scopes"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal([organization], me["organizations"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal(secret[..8], me["hint"]!.GetValue<string>());
        Assert.False(me.ContainsKey("token"));
        Assert.DoesNotContain(secret, me.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenMeWithoutATokenOrWithARevokedOneIs401()
    {
        using var anonymous = factory.Anonymous();
        await (await anonymous.GetAsync("/api/v1/token/me/")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        using var admin = factory.Admin();
        var created = await (await admin.PostJsonAsync(Api.Tokens, new JsonObject
        {
            ["user"] = Email("gone"),
            ["scopes"] = new JsonArray("devices:read"),
        })).BodyAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{Api.Tokens}{created["id"]}/")).StatusCode);
        using var revoked = factory.WithToken(created["token"]!.GetValue<string>());

        var problem = await (await revoked.GetAsync("/api/v1/token/me/")).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        Assert.Equal("The token has been revoked.", problem["detail"]!.GetValue<string>());
    }

    // ---- GET /api/v1/transitions/ ------------------------------------------------------------

    [Fact]
    public async Task TransitionsAnswerTheTablesTheWritesEnforce()
    {
        var secret = await factory.TokenAsync(Email("rules"), OperationsOnly);
        using var client = factory.WithToken(secret);

        var rules = await client.GetJsonAsync("/api/v1/transitions/");

        Assert.Equal("operations:override", rules["override_scope"]!.GetValue<string>());
        Assert.Equal("status", rules["operation"]!["field"]!.GetValue<string>());
        Assert.Equal("operational_status", rules["device"]!["field"]!.GetValue<string>());
        Assert.Equal(OperationStatus.All, rules["operation"]!["statuses"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(DeviceStatus.All, rules["device"]!["statuses"]!.AsArray().Select(s => s!.GetValue<string>()));
        foreach (var status in OperationStatus.All)
        {
            Assert.Equal(OperationStatus.AllowedFrom(status), rules["operation"]!["allowed_next_states"]![status]!.AsArray().Select(s => s!.GetValue<string>()));
        }
        foreach (var status in DeviceStatus.All)
        {
            Assert.Equal(DeviceStatus.AllowedFrom(status), rules["device"]!["allowed_next_states"]![status]!.AsArray().Select(s => s!.GetValue<string>()));
        }
        // The contract's own words, so a change to the tables cannot pass unnoticed.
        Assert.Equal(["completed", "failed", "cancelled"], rules["operation"]!["allowed_next_states"]!["in_progress"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(["active", "inactive", "decommissioned"], rules["device"]!["allowed_next_states"]!["maintenance"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Empty(rules["device"]!["allowed_next_states"]!["decommissioned"]!.AsArray());
    }

    [Fact]
    public async Task TransitionsNeedAToken()
    {
        using var anonymous = factory.Anonymous();

        await (await anonymous.GetAsync("/api/v1/transitions/")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    // ---- GET /api/v1/inventory_device/summary/ -----------------------------------------------

    [Fact]
    public async Task SummaryCountsTheTokensOrganizationsByStatusWithOverdueMaintenance()
    {
        using var admin = factory.Admin();
        var mine = await Seeder.OrganizationAsync(admin);
        var other = await Seeder.OrganizationAsync(admin);
        var now = factory.Clock.GetUtcNow().UtcDateTime;
        await Seeder.DeviceAsync(admin, mine, "active");
        await Seeder.DeviceAsync(admin, mine, "maintenance", extra: Next(now.AddDays(-2)));
        await Seeder.DeviceAsync(admin, mine, "maintenance", extra: Next(now.AddDays(20)));
        await Seeder.DeviceAsync(admin, mine, "decommissioned", extra: Next(now.AddDays(-5)));
        await Seeder.DeviceAsync(admin, other, "maintenance", extra: Next(now.AddDays(-2)));
        var secret = await factory.TokenAsync(Email("summary"), ReadScopes, [mine]);
        using var client = factory.WithToken(secret);

        var summary = await client.GetJsonAsync("/api/v1/inventory_device/summary/");

        Assert.Equal(4, summary["total"]!.GetValue<int>());
        var expected = new Dictionary<string, int> { ["provisioning"] = 0, ["active"] = 1, ["maintenance"] = 2, ["inactive"] = 0, ["decommissioned"] = 1 };
        foreach (var (status, count) in expected)
        {
            Assert.Equal(count, summary["by_status"]![status]!.GetValue<int>());
        }
        // A decommissioned device's past date is no overdue job.
        Assert.Equal(1, summary["maintenance_overdue"]!.GetValue<int>());
        var organization = Assert.Single(summary["organizations"]!.AsArray())!;
        Assert.Equal(mine, organization["organization"]!.GetValue<string>());
        Assert.Equal(4, organization["total"]!.GetValue<int>());
        Assert.Equal(2, organization["by_status"]!["maintenance"]!.GetValue<int>());
        Assert.Equal(1, organization["maintenance_overdue"]!.GetValue<int>());
    }

    [Fact]
    public async Task SummaryForAnUnlimitedTokenListsEveryOrganizationWithDevices()
    {
        using var admin = factory.Admin();
        var first = await Seeder.OrganizationAsync(admin);
        var second = await Seeder.OrganizationAsync(admin);
        await Seeder.DeviceAsync(admin, first, "active");
        await Seeder.DeviceAsync(admin, second, "inactive");

        var summary = await admin.GetJsonAsync("/api/v1/inventory_device/summary/");

        var organizations = summary["organizations"]!.AsArray().ToDictionary(o => o!["organization"]!.GetValue<string>());
        Assert.Equal(1, organizations[first]!["by_status"]!["active"]!.GetValue<int>());
        Assert.Equal(1, organizations[second]!["by_status"]!["inactive"]!.GetValue<int>());
        Assert.Equal(summary["total"]!.GetValue<int>(), organizations.Values.Sum(o => o!["total"]!.GetValue<int>()));
    }

    [Fact]
    public async Task SummaryNeedsDevicesRead()
    {
        var secret = await factory.TokenAsync(Email("ops"), OperationsOnly);
        using var client = factory.WithToken(secret);

        await (await client.GetAsync("/api/v1/inventory_device/summary/")).AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
    }

    // ---- device list additions ----------------------------------------------------------------

    [Fact]
    public async Task DeviceListFiltersByDeviceIdAndByOverdueMaintenance()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var now = factory.Clock.GetUtcNow().UtcDateTime;
        var overdue = await Seeder.DeviceAsync(admin, organization, "maintenance", extra: Next(now.AddDays(-1)));
        var later = await Seeder.DeviceAsync(admin, organization, "active", extra: Next(now.AddDays(1)));
        await Seeder.DeviceAsync(admin, organization, "decommissioned", extra: Next(now.AddDays(-1)));
        var code = overdue["device_id"]!.GetValue<string>();
        var inOrganization = $"{Api.Devices}?organization={Uri.EscapeDataString(organization)}";

        var byCode = await admin.GetJsonAsync($"{Api.Devices}?device_id={Uri.EscapeDataString(code)}");
        var late = await admin.GetJsonAsync($"{inOrganization}&maintenance_overdue=true");
        var notLate = await admin.GetJsonAsync($"{inOrganization}&maintenance_overdue=false&ordering=-device_type");

        Assert.Equal(code, Assert.Single(byCode["results"]!.AsArray())!["device_id"]!.GetValue<string>());
        Assert.Equal(code, Assert.Single(late["results"]!.AsArray())!["device_id"]!.GetValue<string>());
        Assert.Equal(2, notLate["count"]!.GetValue<int>());
        Assert.Contains(later["device_id"]!.GetValue<string>(), notLate["results"]!.AsArray().Select(d => d!["device_id"]!.GetValue<string>()));
        var problem = await (await admin.GetAsync($"{Api.Devices}?maintenance_overdue=yes")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("maintenance_overdue", problem["errors"]!.AsObject().Select(e => e.Key));
    }

    [Theory]
    [InlineData("device_type")]
    [InlineData("assigned_user")]
    [InlineData("organization")]
    public async Task DeviceListSortsByTheConsolesColumns(string ordering)
    {
        using var admin = factory.Admin();

        var ascending = await admin.GetAsync($"{Api.Devices}?ordering={ordering}");
        var descending = await admin.GetAsync($"{Api.Devices}?ordering=-{ordering}");

        Assert.Equal(HttpStatusCode.OK, ascending.StatusCode);
        Assert.Equal(HttpStatusCode.OK, descending.StatusCode);
    }

    // ---- the console's files ------------------------------------------------------------------

    [Theory]
    [InlineData("/")]
    [InlineData("/devices/DEV-001")]
    public async Task TheConsoleShellIsServedWithAStrictContentSecurityPolicy(string path)
    {
        using var client = factory.Anonymous();

        var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var policy = string.Join(" ", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("<script type=\"module\" src=\"/console/app.js\"></script>", html, StringComparison.Ordinal);
        // Nothing inline the policy would have to allow: no script bodies, no style attributes or blocks, no handlers.
        Assert.DoesNotMatch(InlineCode(), html);
    }

    [Fact]
    public async Task TheConsolesScriptsAndStylesAreServedAndRevalidatedByETag()
    {
        using var client = factory.Anonymous();

        var script = await client.GetAsync("/console/app.js");
        var style = await client.GetAsync("/console/style.css");

        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal("text/css", style.Content.Headers.ContentType?.MediaType);
        using var again = new HttpRequestMessage(HttpMethod.Get, "/console/app.js");
        again.Headers.IfNoneMatch.Add(script.Headers.ETag!);
        Assert.Equal(HttpStatusCode.NotModified, (await client.SendAsync(again)).StatusCode);
        await (await client.GetAsync("/console/missing.js")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Theory]
    [InlineData("/console/")]
    [InlineData("/console")]
    [InlineData("/console/index.html")]
    [InlineData("/openapi/v2.json")]
    public async Task APathBesideTheConsolesFilesAndTheDocumentIsANotFoundProblem(string path)
    {
        using var client = factory.Anonymous();

        await (await client.GetAsync(path)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Theory]
    [InlineData("/healthz", HttpStatusCode.OK)]
    [InlineData("/readyz", HttpStatusCode.OK)]
    [InlineData("/openapi/v1.json", HttpStatusCode.OK)]
    [InlineData("/metrics", HttpStatusCode.OK)]
    [InlineData("/api/v1/inventory_device/", HttpStatusCode.Unauthorized)]
    [InlineData("/api/v1/nothing-here/", HttpStatusCode.NotFound)]
    public async Task TheConsoleLeavesTheApiDocumentsAndProbesAlone(string path, HttpStatusCode status)
    {
        using var client = factory.Anonymous();

        var response = await client.GetAsync(path);

        Assert.Equal(status, response.StatusCode);
        Assert.False(response.Headers.Contains("Content-Security-Policy"), $"{path} carries the console's policy.");
        Assert.NotEqual("text/html", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task TheApiReferenceAtDocsStillAnswers()
    {
        using var client = factory.Anonymous();

        var response = await client.GetAsync("/docs/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("DeviceOps API", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", RegexOptions.IgnoreCase)]
    private static partial Regex InlineCode();
}
