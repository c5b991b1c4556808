using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Demo;
using DeviceOps.Idempotency;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Http;

public static class HostSetup
{
    public const string DefaultUrl = "http://127.0.0.1:8080";
    public const string BootstrapTokenSetting = "DEVICEOPS_BOOTSTRAP_TOKEN";

    /// <summary>Defaults that make a bare <c>dotnet run</c> useful: loopback port 8080, body limits, the clock.</summary>
    public static WebApplicationBuilder UseDeviceOpsDefaults(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }
        builder.Services.Configure<BodyLimits>(builder.Configuration.GetSection("DeviceOps:Limits"));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Logging.AddFilter("Microsoft.EntityFrameworkCore.Database.Command", LogLevel.Warning);
        builder.Services.AddHostedService<StoreInitializer>();
        builder.Services.Configure<IdempotencyOptions>(builder.Configuration.GetSection("DeviceOps:Idempotency"));
        builder.Services.AddHostedService<IdempotencyKeys.Janitor>();
        return builder;
    }

    /// <summary>
    /// Migrates the store, ensures the bootstrap token and, with <c>--demo</c> or on a first run
    /// in Development, the demo world — in <c>StartingAsync</c>, before the server takes its
    /// first request, whoever hosts the app.
    /// </summary>
    private sealed class StoreInitializer(IServiceProvider services, IConfiguration configuration, IHostEnvironment environment,
        ILogger<StoreInitializer> logger) : IHostedLifecycleService
    {
        public async Task StartingAsync(CancellationToken cancellationToken)
        {
            await services.MigrateDeviceOpsStoreAsync(cancellationToken);
            await using var scope = services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
            var clock = scope.ServiceProvider.GetRequiredService<TimeProvider>();
            if (configuration[BootstrapTokenSetting] is { Length: > 0 } secret)
            {
                await TokenIssuer.EnsureBootstrapAsync(db, secret, Rfc3339.Now(clock), logger, cancellationToken);
            }
            var demo = string.Equals(configuration[DemoSetting], "true", StringComparison.OrdinalIgnoreCase);
            if (demo || (environment.IsDevelopment() && !await db.Devices.AnyAsync(cancellationToken)))
            {
                var (operationId, token) = await DemoData.EnsureAsync(db, clock, cancellationToken);
                PrintDemo(configuration, operationId, token);
            }
        }

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    public const string DemoSetting = "DeviceOps:Demo";

    private static void PrintDemo(IConfiguration configuration, int operationId, string token)
    {
        {
            var url = (configuration["urls"] ?? DefaultUrl).Split(';')[0].TrimEnd('/');
            Console.WriteLine($"""

                DeviceOps demo data is ready: device DEV-001 with open operation {operationId}.
                Demo token (shown once, all scopes, user {DemoData.DemoUser}):

                    {token}

                Web console:  {url}/  (paste the token to sign in)
                Try:  curl -H "Authorization: Bearer {token}" {url}/api/v1/inventory_device_operation/{operationId}/

                """);
        }
    }
}
