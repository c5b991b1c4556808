using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

/// <summary>
/// The seed page's example, sent as it stands, against the seed's example world. The world has
/// fixed names (DEV-001, IT Infrastructure), so each test gets a server and store of its own.
/// </summary>
public sealed class SeedExampleTests : OwnServerTests
{
    private static readonly HashSet<string> VendorIllustrations =
        ["id", "created_at", "updated_at", "last_updated", "updated_by", "operational_history"];

    /// <summary>DEV-001 as the seed describes it before the PUT: active, in the warehouse, firmware 2.1.4.</summary>
    private async Task<(HttpClient Client, int OperationId)> SeedWorldAsync()
    {
        using var admin = Factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin, "IT Infrastructure");
        var device = await admin.PostJsonAsync(Api.Devices, new JsonObject
        {
            ["device_id"] = "DEV-001",
            ["device_name"] = "Network Switch - NS-001",
            ["serial_number"] = "NS001-ABC123",
            ["device_type"] = "network_switch",
            ["organization"] = organization,
            ["operational_status"] = "active",
            ["location"] = "Warehouse A - Section 3",
            ["configuration"] = new JsonObject { ["firmware_version"] = "2.1.4", ["alert_level"] = "low" },
        });
        Assert.Equal(HttpStatusCode.Created, device.StatusCode);
        var operation = await Seeder.OperationAsync(admin, "DEV-001", "in_progress");
        var client = await Factory.ClientAsync("admin@company.com", ["operations:read", "operations:write", "devices:read"]);
        return (client, operation["id"]!.GetValue<int>());
    }

    [Fact]
    public async Task SeedPutSentAsItStandsReturnsEveryFieldOfTheSeedResponse()
    {
        var (client, id) = await SeedWorldAsync();

        var response = await client.PutAsync($"{Api.Operations}{id}/", Api.Json(Api.SeedRequest));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.BodyAsync();
        var expected = JsonNode.Parse(Api.SeedResponse)!.AsObject();
        foreach (var (field, value) in expected)
        {
            Assert.True(body.ContainsKey(field), $"response lacks {field}");
            if (!VendorIllustrations.Contains(field))
            {
                Assert.True(JsonNode.DeepEquals(value, body[field]), $"{field}: expected {value?.ToJsonString()}, got {body[field]?.ToJsonString()}");
            }
        }
        Assert.Equal(id, body["id"]!.GetValue<int>());
        Assert.Equal("admin@company.com", body["updated_by"]!.GetValue<string>());
        Assert.NotNull(response.Headers.ETag);
    }

    [Fact]
    public async Task SeedPutLeavesOneHistoryEntryPerChangedFieldWithTheStatusChangeNewest()
    {
        var (client, id) = await SeedWorldAsync();

        var response = await client.PutAsync($"{Api.Operations}{id}/", Api.Json(Api.SeedRequest));

        var body = await response.BodyAsync();
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var entries = body["operational_history"]!.AsArray().Select(e => e!.AsObject())
            .Where(e => e["request_id"]!.GetValue<string>() == requestId).ToList();
        Assert.Equal(
            ["status_change", "maintenance_update", "maintenance_update", "configuration_change", "assignment_change", "relocation", "operation_status_change"],
            entries.Select(e => e["action"]!.GetValue<string>()));
        var status = entries[0];
        Assert.Equal("active", status["from_status"]!.GetValue<string>());
        Assert.Equal("maintenance", status["to_status"]!.GetValue<string>());
        Assert.All(entries, e => Assert.Equal("admin@company.com", e["performed_by"]!.GetValue<string>()));
        Assert.All(entries, e => Assert.Equal(id, e["operation_id"]!.GetValue<int>()));
        var configuration = entries.Single(e => e["action"]!.GetValue<string>() == "configuration_change")["changes"]!.AsObject();
        Assert.Equal("low", configuration["configuration.alert_level"]!["from"]!.GetValue<string>());
        Assert.Equal("standard", configuration["configuration.alert_level"]!["to"]!.GetValue<string>());
        Assert.False(configuration.ContainsKey("configuration.firmware_version"));
        var relocation = entries.Single(e => e["action"]!.GetValue<string>() == "relocation")["changes"]!["location"]!;
        Assert.Equal("Warehouse A - Section 3", relocation["from"]!.GetValue<string>());
        Assert.Equal("Building A - Floor 2", relocation["to"]!.GetValue<string>());
    }

    [Fact]
    public async Task SeedPutRepeatedChangesNothingAndLeavesNoEntry()
    {
        var (client, id) = await SeedWorldAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsync($"{Api.Operations}{id}/", Api.Json(Api.SeedRequest))).StatusCode);
        var before = await Seeder.HistoryAsync(client, "DEV-001");

        var again = await client.PutAsync($"{Api.Operations}{id}/", Api.Json(Api.SeedRequest));

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var after = await Seeder.HistoryAsync(client, "DEV-001");
        Assert.Equal(before.Count, after.Count);
    }

    [Fact]
    public async Task SeedPutWithoutTrailingSlashWorksWithoutRedirect()
    {
        var (client, id) = await SeedWorldAsync();

        var response = await client.PutAsync($"/api/v1/inventory_device_operation/{id}", Api.Json(Api.SeedRequest));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stored = await client.GetJsonAsync($"{Api.Operations}{id}");
        Assert.Equal("completed", stored["status"]!.GetValue<string>());
        Assert.Equal("maintenance", stored["operational_status"]!.GetValue<string>());
    }
}
