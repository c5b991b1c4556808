using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using DeviceOps.Testing;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace DeviceOps.Console.Tests;

/// <summary>
/// The server on a real loopback socket (WebApplicationFactory with Kestrel), since a browser
/// cannot reach an in-memory test server. Its store is a temporary SQLite file, or a fresh
/// database on the PostgreSQL that DEVICEOPS_TEST_POSTGRES names. Tokens are real, made through
/// the API with the bootstrap admin token.
/// </summary>
public sealed class ConsoleServer : WebApplicationFactory<Program>
{
    public const string BootstrapSecret = "console-tests-admin-token-0123456789";
    public const string PostgresSetting = ThrowawayDatabase.ServerSetting;

    private ThrowawayStore? _store;

    public Uri BaseAddress { get; private set; } = null!;

    public static string StoreName => string.IsNullOrEmpty(Environment.GetEnvironmentVariable(PostgresSetting)) ? "sqlite" : "postgres";

    public async Task StartAsync()
    {
        _store = await ThrowawayStore.CreateAsync("deviceops-console");
        UseKestrel();
        StartServer();
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address.TrimEnd('/') + "/");
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("DEVICEOPS_DATABASE", _store!.ConnectionString);
        builder.UseSetting("DEVICEOPS_BOOTSTRAP_TOKEN", BootstrapSecret);
        // Port 0: the operating system picks a free loopback port.
        builder.UseSetting("urls", "http://127.0.0.1:0");
        builder.UseSetting("DeviceOps:RateLimit:DefaultPerMinute", "1000000");
        builder.UseSetting("DeviceOps:RateLimit:AnonymousPerMinute", "1000000");
    }

    /// <summary>A client over the socket with the bootstrap admin token, for seeding and for changes made "by someone else".</summary>
    public HttpClient Admin() => Client(BootstrapSecret);

    public HttpClient Client(string token)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public async Task<string> TokenAsync(string user, string[] scopes, string[]? organizations = null)
    {
        var body = new JsonObject
        {
            ["user"] = user,
            ["scopes"] = new JsonArray([.. scopes.Select(s => JsonValue.Create(s))]),
        };
        if (organizations is not null)
        {
            body["organizations"] = new JsonArray([.. organizations.Select(o => JsonValue.Create(o))]);
        }
        using var admin = Admin();
        var response = await admin.PostAsync("api/v1/token/", Json(body));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
    }

    public static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}

/// <summary>What a test seeds, through the API, under names no other test uses.</summary>
public static class Seed
{
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    public static async Task<string> OrganizationAsync(HttpClient admin)
    {
        var name = Unique("Org");
        var response = await admin.PostAsync("api/v1/organization/", ConsoleServer.Json(new JsonObject { ["name"] = name }));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return name;
    }

    public static async Task<JsonObject> DeviceAsync(HttpClient admin, string organization, string code, string status,
        DateTimeOffset? nextMaintenance = null, string type = "network_switch")
    {
        var body = new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = $"Switch {code}",
            ["serial_number"] = Unique("SN"),
            ["device_type"] = type,
            ["organization"] = organization,
            ["operational_status"] = status,
            ["location"] = "Warehouse A - Section 3",
            ["assigned_user"] = "john.doe@company.com",
            ["configuration"] = new JsonObject { ["firmware_version"] = "2.1.4", ["alert_level"] = "standard" },
        };
        if (nextMaintenance is { } when)
        {
            body["next_maintenance"] = when.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }
        var response = await admin.PostAsync("api/v1/inventory_device/", ConsoleServer.Json(body));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    public static async Task<JsonObject> OperationAsync(HttpClient admin, string code, string status, string type = "maintenance")
    {
        var response = await admin.PostAsync("api/v1/inventory_device_operation/", ConsoleServer.Json(new JsonObject
        {
            ["device_id"] = code,
            ["operation_type"] = type,
            ["status"] = status,
            ["operator_id"] = "OP-456",
            ["description"] = "Routine maintenance check",
        }));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    public static async Task PatchAsync(HttpClient admin, string path, JsonObject body)
    {
        var response = await admin.PatchAsync(path, ConsoleServer.Json(body));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }
}
