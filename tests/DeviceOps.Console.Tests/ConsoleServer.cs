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
using Microsoft.Data.Sqlite;
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

    private readonly string _folder = Directory.CreateTempSubdirectory("deviceops-console-").FullName;
    private ThrowawayDatabase? _postgres;
    private string _connectionString = "";

    public Uri BaseAddress { get; private set; } = null!;

    public static string StoreName => string.IsNullOrEmpty(Environment.GetEnvironmentVariable(PostgresSetting)) ? "sqlite" : "postgres";

    public async Task StartAsync()
    {
        if ((_postgres = await ThrowawayDatabase.CreateAsync("deviceops_console")) is { } database)
        {
            _connectionString = database.ConnectionString;
        }
        else
        {
            _connectionString = $"Data Source={Path.Combine(_folder, "deviceops.db")}";
        }
        UseKestrel();
        StartServer();
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address.TrimEnd('/') + "/");
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("DEVICEOPS_DATABASE", _connectionString);
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
        SqliteConnection.ClearAllPools();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finalising connection; the temp folder is cleaned by the OS.
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
