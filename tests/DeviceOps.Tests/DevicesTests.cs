using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class DevicesTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    /// <summary>
    /// Tokens, webhooks, list filters and device writes all read an organization given as digits
    /// as its id, so no organization may be named with digits only (one named "1" was the
    /// organization a device write meant by "1", while a token limited to "1" got organization 1).
    /// </summary>
    [Fact]
    public async Task DigitsNameAnOrganizationByIdEverywhereAndNoNameIsOnlyDigits()
    {
        using var admin = factory.Admin();
        var refused = await admin.PostJsonAsync(Api.Organizations, new JsonObject { ["name"] = "1234" });
        var problem = await refused.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("only digits", problem.Messages("name").Single(), StringComparison.Ordinal);
        Assert.Empty((await admin.GetJsonAsync($"{Api.Organizations}?name=1234"))["results"]!.AsArray());

        var name = await Seeder.OrganizationAsync(admin);
        var id = (await admin.GetJsonAsync($"{Api.Organizations}?name={name}"))["results"]![0]!["id"]!.GetValue<int>();
        var device = await Seeder.DeviceAsync(admin, organization: id.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(name, device["organization"]!.GetValue<string>());
        var listed = (await admin.GetJsonAsync($"{Api.Devices}?organization={id}"))["results"]!.AsArray();
        Assert.Contains(listed, d => d!["device_id"]!.GetValue<string>() == device["device_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task RegisteringADeviceAnswers201WithLocationAndACreatedEntry()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var code = Seeder.Unique("DEV");

        var response = await admin.PostJsonAsync(Api.Devices, new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = "Core Router",
            ["serial_number"] = Seeder.Unique("SN"),
            ["device_type"] = "router",
            ["organization"] = organization,
        });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal($"/api/v1/inventory_device/{body["id"]}/", response.Headers.Location!.OriginalString);
        Assert.Equal("provisioning", body["operational_status"]!.GetValue<string>());
        Assert.Equal(organization, body["organization"]!.GetValue<string>());
        Assert.Equal("admin@localhost", body["updated_by"]!.GetValue<string>());
        var created = Assert.Single(body["operational_history"]!.AsArray());
        Assert.Equal("created", created!["action"]!.GetValue<string>());
        Assert.Equal("provisioning", created["to_status"]!.GetValue<string>());
    }

    [Fact]
    public async Task DuplicateSerialNumberReturns409AndRegistersNothing()
    {
        using var admin = factory.Admin();
        var existing = await Seeder.DeviceAsync(admin);
        var code = Seeder.Unique("DEV");

        var response = await admin.PostJsonAsync(Api.Devices, new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = "Copy",
            ["serial_number"] = existing["serial_number"]!.DeepClone(),
            ["device_type"] = "router",
            ["organization"] = existing["organization"]!.DeepClone(),
        });

        await response.AssertProblemAsync(HttpStatusCode.Conflict, "duplicate");
        Assert.Equal(0, (await admin.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(existing["organization"]!.GetValue<string>())}&limit=1000"))["results"]!
            .AsArray().Count(d => d!["device_id"]!.GetValue<string>() == code));
    }

    [Fact]
    public async Task PatchMergesConfigurationKeyByKeyAndNullRemovesAKey()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var url = $"{Api.Devices}{device["id"]}/";

        var response = await admin.PatchJsonAsync(url, new JsonObject
        {
            ["configuration"] = new JsonObject { ["alert_level"] = null, ["network_profile"] = "production", ["vlan"] = 120 },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.True(JsonNode.DeepEquals(
            new JsonObject { ["firmware_version"] = "2.1.4", ["network_profile"] = "production", ["vlan"] = 120 },
            body["configuration"]));
        var changes = body["operational_history"]![0]!["changes"]!.AsObject();
        Assert.Equal("configuration_change", body["operational_history"]![0]!["action"]!.GetValue<string>());
        Assert.Equal("low", changes["configuration.alert_level"]!["from"]!.GetValue<string>());
        Assert.Null(changes["configuration.alert_level"]!["to"]);
        Assert.Equal(120, changes["configuration.vlan"]!["to"]!.GetValue<int>());
    }

    [Fact]
    public async Task PutReplacesTheDescriptionAndClearsWhatItOmits()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var url = $"{Api.Devices}{device["id"]}/";

        var response = await admin.PutJsonAsync(url, new JsonObject
        {
            ["device_name"] = "Renamed switch",
            ["serial_number"] = device["serial_number"]!.DeepClone(),
            ["device_type"] = "network_switch",
            ["organization"] = device["organization"]!.DeepClone(),
            ["operational_status"] = "inactive",
            ["configuration"] = new JsonObject { ["firmware_version"] = "3.0.0" },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal("Renamed switch", body["device_name"]!.GetValue<string>());
        Assert.Equal("inactive", body["operational_status"]!.GetValue<string>());
        Assert.Null(body["location"]);
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["firmware_version"] = "3.0.0" }, body["configuration"]));
        var actions = body["operational_history"]!.AsArray().Select(e => e!["action"]!.GetValue<string>()).Take(4);
        Assert.Equal(["status_change", "configuration_change", "relocation", "device_update"], actions);
    }

    [Fact]
    public async Task OperationCanBeOpenedOnlyOnAnExistingDevice()
    {
        using var admin = factory.Admin();

        var response = await admin.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = "NO-SUCH-DEVICE",
            ["operation_type"] = "maintenance",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("NO-SUCH-DEVICE", problem.Messages("device_id")[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpeningAnOperationAnswers201WithTheUnionAndAnEntry()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);

        var response = await admin.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = device["device_id"]!.DeepClone(),
            ["operation_type"] = "firmware_update",
            ["configuration"] = new JsonObject { ["firmware_version"] = "2.2.0" },
        });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal($"/api/v1/inventory_device_operation/{body["id"]}/", response.Headers.Location!.OriginalString);
        Assert.Equal("pending", body["status"]!.GetValue<string>());
        Assert.Equal("2.2.0", body["configuration"]!["firmware_version"]!.GetValue<string>());
        Assert.Equal(device["device_name"]!.GetValue<string>(), body["device_name"]!.GetValue<string>());
        Assert.Equal(["configuration_change", "operation_created"],
            body["operational_history"]!.AsArray().Take(2).Select(e => e!["action"]!.GetValue<string>()));
    }
}
