using System.Net;
using System.Text.Json.Nodes;

namespace DeviceOps.Tests.Infrastructure;

/// <summary>
/// Creates what a test checks, through the API, with names no other test uses, so tests sharing
/// a server never see each other's rows.
/// </summary>
public static class Seeder
{
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    public static async Task<string> OrganizationAsync(HttpClient admin, string? name = null)
    {
        name ??= Unique("Org");
        var response = await admin.PostJsonAsync(Api.Organizations, new JsonObject { ["name"] = name });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return name;
    }

    public static async Task<JsonObject> DeviceAsync(HttpClient admin, string? organization = null, string status = "active",
        string? code = null, JsonObject? extra = null)
    {
        organization ??= await OrganizationAsync(admin);
        var response = await admin.PostJsonAsync(Api.Devices, DeviceBody(organization, status, code, extra));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return await response.BodyAsync();
    }

    /// <summary>A new device's registration, not sent: <paramref name="extra"/> adds or replaces fields.</summary>
    public static JsonObject DeviceBody(string organization, string status = "active", string? code = null, JsonObject? extra = null)
    {
        code ??= Unique("DEV");
        var body = new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = $"Switch {code}",
            ["serial_number"] = Unique("SN"),
            ["device_type"] = "network_switch",
            ["organization"] = organization,
            ["operational_status"] = status,
            ["location"] = "Warehouse A - Section 3",
            ["configuration"] = new JsonObject { ["firmware_version"] = "2.1.4", ["alert_level"] = "low" },
        };
        foreach (var (key, value) in extra ?? [])
        {
            body[key] = value?.DeepClone();
        }
        return body;
    }

    public static async Task<JsonObject> OperationAsync(HttpClient admin, string deviceCode, string status = "in_progress",
        string type = "maintenance")
    {
        var response = await admin.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = deviceCode,
            ["operation_type"] = type,
            ["status"] = status,
            ["operator_id"] = "OP-456",
            ["description"] = "Routine maintenance check",
        });
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return await response.BodyAsync();
    }

    /// <summary>A device with an open operation on it: the usual starting point.</summary>
    public static async Task<(JsonObject Device, JsonObject Operation)> DeviceWithOperationAsync(HttpClient admin,
        string? organization = null, string deviceStatus = "active", string operationStatus = "in_progress")
    {
        var device = await DeviceAsync(admin, organization, deviceStatus);
        var operation = await OperationAsync(admin, device["device_id"]!.GetValue<string>(), operationStatus);
        return (device, operation);
    }

    /// <summary><paramref name="count"/> devices, each with an open operation, and each device's code.</summary>
    public static async Task<(JsonObject Device, JsonObject Operation, string Code)[]> DevicesWithOperationsAsync(HttpClient admin, int count)
    {
        var targets = new (JsonObject, JsonObject, string)[count];
        for (var i = 0; i < count; i++)
        {
            var (device, operation) = await DeviceWithOperationAsync(admin);
            targets[i] = (device, operation, device["device_id"]!.GetValue<string>());
        }
        return targets;
    }

    /// <summary>Every history entry of a device, newest first, read through the log endpoint.</summary>
    public static async Task<JsonArray> HistoryAsync(HttpClient client, string deviceCode)
    {
        var page = await client.GetJsonAsync($"{Api.Log}?device_id={Uri.EscapeDataString(deviceCode)}&limit=1000");
        return page["results"]!.AsArray();
    }
}
