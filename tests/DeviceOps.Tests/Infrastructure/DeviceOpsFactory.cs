using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using DeviceOps.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace DeviceOps.Tests.Infrastructure;

/// <summary>
/// The server in-process, through the real HTTP pipeline, on a store of its own: a temporary
/// SQLite file, or — when DEVICEOPS_TEST_POSTGRES names a PostgreSQL server — a fresh database
/// on it. Authentication is real: the bootstrap admin token makes the tokens tests use.
/// </summary>
public class DeviceOpsFactory : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string BootstrapSecret = "test-bootstrap-secret-0123456789abcdef";
    public const string PostgresSetting = ThrowawayDatabase.ServerSetting;

    private ThrowawayStore? _store;

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public string ConnectionString { get; private set; } = "";

    /// <summary>What the server logged at warning level or above.</summary>
    public CapturedLogs Logs { get; } = new();

    /// <summary>
    /// Settings for this server; set before the server starts. Rate limits are lifted by
    /// default, since a test class makes thousands of calls a minute with one token; the rate
    /// limit tests set their own.
    /// </summary>
    public Dictionary<string, string> Settings { get; } = new()
    {
        ["DeviceOps:RateLimit:DefaultPerMinute"] = "1000000",
        ["DeviceOps:RateLimit:AnonymousPerMinute"] = "1000000",
    };

    /// <summary>
    /// Another server whose store this one uses (the same SQLite file or PostgreSQL database), as
    /// a second instance of a deployment would; set before the server starts. The store stays
    /// the other server's to remove.
    /// </summary>
    public DeviceOpsFactory? SharesStoreWith { get; init; }

    public static bool OnPostgres => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(PostgresSetting));

    public virtual async Task InitializeAsync()
    {
        if (SharesStoreWith is { } other)
        {
            ConnectionString = other.ConnectionString;
        }
        else
        {
            _store = await ThrowawayStore.CreateAsync("deviceops-test");
            ConnectionString = await UseStoreAsync(_store.ConnectionString);
        }
        // Start the host now, so migrations run before the first test.
        _ = Server;
    }

    /// <summary>
    /// The connection string this server uses for its fresh store; a test class may connect
    /// differently (another role, other settings). Runs before the server starts.
    /// </summary>
    protected virtual Task<string> UseStoreAsync(string connectionString) => Task.FromResult(connectionString);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("DEVICEOPS_DATABASE", ConnectionString);
        builder.UseSetting("DEVICEOPS_BOOTSTRAP_TOKEN", BootstrapSecret);
        foreach (var (key, value) in Settings)
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Clock));
        builder.ConfigureLogging(logging => logging.AddProvider(Logs));
    }

    /// <summary>A client authenticated with the bootstrap admin token.</summary>
    public HttpClient Admin() => WithToken(BootstrapSecret);

    public HttpClient Anonymous() => CreateClient();

    public HttpClient WithToken(string secret)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return client;
    }

    /// <summary>Makes a real token through the API and returns a client that sends it.</summary>
    public async Task<HttpClient> ClientAsync(string user, string[] scopes, string[]? organizations = null, DateTimeOffset? expiresAt = null)
    {
        var secret = await TokenAsync(user, scopes, organizations, expiresAt);
        return WithToken(secret);
    }

    public async Task<string> TokenAsync(string user, string[] scopes, string[]? organizations = null, DateTimeOffset? expiresAt = null,
        int? rateLimitPerMinute = null)
    {
        var body = new JsonObject
        {
            ["user"] = user,
            ["scopes"] = new JsonArray([.. scopes.Select(s => JsonValue.Create(s))]),
        };
        if (organizations is not null)
        {
            body["organizations"] = new JsonArray([.. organizations.Select(s => JsonValue.Create(s))]);
        }
        if (expiresAt is { } expiry)
        {
            body["expires_at"] = expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        }
        if (rateLimitPerMinute is { } perMinute)
        {
            body["rate_limit_per_minute"] = perMinute;
        }
        using var admin = Admin();
        var response = await admin.PostAsJsonAsync("/api/v1/token/", body);
        response.EnsureSuccessStatusCode();
        var created = await response.Content.ReadFromJsonAsync<JsonObject>();
        return created!["token"]!.GetValue<string>();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    async Task IAsyncLifetime.DisposeAsync() => await DisposeAsync();
}
