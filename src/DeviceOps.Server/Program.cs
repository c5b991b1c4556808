using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.Events;
using DeviceOps.History;
using DeviceOps.Idempotency;
using DeviceOps.Http;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using DeviceOps.RateLimits;
using DeviceOps.WebConsole;
using DeviceOps.Webhooks;
using Prometheus;

DeviceOps.NativeHeap.LimitArenas();
var tokenCommand = args.FirstOrDefault() == "token";
// Settings are read once, at start: reloading them on change watches the content root, where the
// embedded store lives, and every write to its log woke that watcher (a PUT benchmark's profile:
// some 4 % of the server's CPU). An argument given by the user still wins, being later.
string[] hostArgs = ["--hostBuilder:reloadConfigOnChange=false", .. tokenCommand ? [] : args.Where(a => a != "--demo")];
var builder = WebApplication.CreateBuilder(hostArgs);
if (tokenCommand)
{
    // The command's stdout is its result (`token create` prints the secret on the first line, for
    // scripts); log lines such as the first run's migrations go to stderr instead.
    builder.Logging.AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
}
if (args.Contains("--demo"))
{
    builder.Configuration[HostSetup.DemoSetting] = "true";
}

builder.AddDeviceOpsStore();
builder.UseDeviceOpsDefaults();
builder.Services.AddDeviceOpsProblemDetails();
builder.Services.AddDeviceOpsAuth();
builder.Services.AddDeviceOpsJson();
builder.Services.AddDeviceOpsOpenApi();
builder.Services.AddDeviceOpsRateLimits(builder.Configuration);
builder.AddDeviceOpsWebhooks();

var app = builder.Build();

app.UseRequestId();
app.UseKnownMethods();
// Routing after the method is known: a HEAD is routed as its GET.
app.UseRouting();
app.UseHttpMetrics();
app.UseDeviceOpsProblemDetails();
app.UseAuthentication();
app.UseDeviceOpsRateLimits();
app.UseAuthorization();
app.UseIdempotency();

app.MapHealth();
app.MapDeviceOpsDocs();
app.MapOrganizations();
app.MapDevices();
app.MapOperations();
app.MapHistory();
app.MapTokens();
app.MapEvents();
app.MapWebhooks();
app.MapTransitions();
app.MapWebConsole();

if (tokenCommand)
{
    await app.Services.MigrateDeviceOpsStoreAsync();
    return await TokenCommand.RunAsync(app.Services, args, Console.Out, Console.Error);
}
await app.RunAsync();
return 0;

/// <summary>The entry point; public so tests can host it with WebApplicationFactory.</summary>
public partial class Program;
