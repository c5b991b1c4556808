using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Demo;
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
        return builder;
    }

    /// <summary>Ensures the bootstrap token and, with <c>--demo</c> or on a first run in Development, the demo world.</summary>
    public static async Task PrepareDeviceOpsAsync(this WebApplication app, bool demo)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        var clock = scope.ServiceProvider.GetRequiredService<TimeProvider>();
        if (app.Configuration[BootstrapTokenSetting] is { Length: > 0 } secret)
        {
            await TokenIssuer.EnsureBootstrapAsync(db, secret, Rfc3339.Now(clock), app.Logger, CancellationToken.None);
        }
        if (demo || (app.Environment.IsDevelopment() && !await db.Devices.AnyAsync()))
        {
            var (operationId, token) = await DemoData.EnsureAsync(db, clock, CancellationToken.None);
            var url = (app.Configuration["urls"] ?? DefaultUrl).Split(';')[0].TrimEnd('/');
            Console.WriteLine($"""

                DeviceOps demo data is ready: device DEV-001 with open operation {operationId}.
                Demo token (shown once, all scopes, user {DemoData.DemoUser}):

                    {token}

                Try:  curl -H "Authorization: Bearer {token}" {url}/api/v1/inventory_device_operation/{operationId}/

                """);
        }
    }
}
