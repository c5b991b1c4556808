using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Operations;
using DeviceOps.Organizations;

var tokenCommand = args.FirstOrDefault() == "token";
var builder = WebApplication.CreateBuilder(tokenCommand ? [] : [.. args.Where(a => a != "--demo")]);
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

var app = builder.Build();

app.UseRequestId();
app.UseDeviceOpsProblemDetails();
app.UseAuthentication();
app.UseAuthorization();

app.MapHealth();
app.MapDeviceOpsDocs();
var api = app.MapGroup("").WithProblemResults();
api.MapOrganizations();
api.MapDevices();
api.MapOperations();
api.MapHistory();
api.MapTokens();

if (tokenCommand)
{
    await app.Services.MigrateDeviceOpsStoreAsync();
    return await TokenCommand.RunAsync(app.Services, args, Console.Out, Console.Error);
}
await app.RunAsync();
return 0;

/// <summary>The entry point; public so tests can host it with WebApplicationFactory.</summary>
public partial class Program;
