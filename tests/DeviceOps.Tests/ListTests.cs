using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class ListTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private static int[] Ids(JsonObject page) => [.. page["results"]!.AsArray().Select(r => r!["id"]!.GetValue<int>())];

    [Fact]
    public async Task OperationsPageWithLimitOffsetAndLinksInRestFrameworkStyle()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var created = new List<int>();
        for (var i = 0; i < 5; i++)
        {
            created.Add((await Seeder.OperationAsync(admin, code, "pending"))["id"]!.GetValue<int>());
        }

        var first = await admin.GetJsonAsync($"{Api.Operations}?device_id={code}&limit=2");
        var second = await admin.GetJsonAsync(first["next"]!.GetValue<string>());
        var last = await admin.GetJsonAsync(second["next"]!.GetValue<string>());

        Assert.Equal(5, first["count"]!.GetValue<int>());
        Assert.Null(first["previous"]);
        Assert.Equal(created[..2], Ids(first));
        Assert.Equal(created[2..4], Ids(second));
        Assert.Equal(created[4..], Ids(last));
        Assert.Null(last["next"]);
        Assert.Contains($"device_id={code}", second["previous"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(first["results"]![0]!["operational_history"]);
    }

    [Fact]
    public async Task OperationsFilterByStatusTypeOperatorAndOrderDescending()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var pending = await Seeder.OperationAsync(admin, code, "pending", "inspection");
        var scheduled = await Seeder.OperationAsync(admin, code, "scheduled", "firmware_update");
        await admin.PatchJsonAsync($"{Api.Operations}{scheduled["id"]}/", new JsonObject { ["operator_id"] = "OP-999" });

        var byStatus = await admin.GetJsonAsync($"{Api.Operations}?device_id={code}&status=pending");
        var byType = await admin.GetJsonAsync($"{Api.Operations}?device_id={code}&operation_type=firmware_update");
        var byOperator = await admin.GetJsonAsync($"{Api.Operations}?operator_id=OP-999&device_id={code}");
        var newestFirst = await admin.GetJsonAsync($"{Api.Operations}?device_id={code}&ordering=-id");

        Assert.Equal([pending["id"]!.GetValue<int>()], Ids(byStatus));
        Assert.Equal([scheduled["id"]!.GetValue<int>()], Ids(byType));
        Assert.Equal([scheduled["id"]!.GetValue<int>()], Ids(byOperator));
        Assert.Equal([scheduled["id"]!.GetValue<int>(), pending["id"]!.GetValue<int>()], Ids(newestFirst));
    }

    [Fact]
    public async Task DevicesFilterByOrganizationStatusTypeLocationUserAndMaintenanceDue()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var due = await Seeder.DeviceAsync(admin, organization, "maintenance", extra: new JsonObject
        {
            ["next_maintenance"] = "2026-02-01T00:00:00Z",
            ["assigned_user"] = "night.shift@example.com",
            ["device_type"] = "access_point",
        });
        var later = await Seeder.DeviceAsync(admin, organization, "active", extra: new JsonObject
        {
            ["next_maintenance"] = "2027-01-01T00:00:00Z",
            ["location"] = "Building C",
        });
        var organizationId = (await admin.GetJsonAsync($"{Api.Organizations}?name={Uri.EscapeDataString(organization)}"))["results"]![0]!["id"]!.GetValue<int>();

        Assert.Equal([due["id"]!.GetValue<int>(), later["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(organization)}")));
        Assert.Equal([due["id"]!.GetValue<int>(), later["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}")));
        Assert.Equal([due["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&operational_status=maintenance")));
        Assert.Equal([due["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&device_type=access_point")));
        Assert.Equal([later["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&location=Building%20C")));
        Assert.Equal([due["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&assigned_user=night.shift@example.com")));
        Assert.Equal([due["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&next_maintenance_before=2026-03-01T12:00:00Z")));
        Assert.Equal([later["id"]!.GetValue<int>(), due["id"]!.GetValue<int>()],
            Ids(await admin.GetJsonAsync($"{Api.Devices}?organization={organizationId}&ordering=-next_maintenance")));
    }

    [Fact]
    public async Task ListWithBadParametersReturns400NamingEach()
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync($"{Api.Operations}?limit=5000&offset=-1&ordering=color&status=done&since=yesterday");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["limit", "offset", "ordering", "since", "status"], problem["errors"]!.AsObject().Select(p => p.Key).Order());
    }

    [Theory]
    [InlineData("/api/v1/token/?ordering=zzz", "ordering")]
    [InlineData("/api/v1/webhook/?ordering=zzz", "ordering")]
    [InlineData("/api/v1/webhook/1/deliveries/?ordering=zzz", "ordering")]
    [InlineData("/api/v1/inventory_device_operation/?ordering=--id", "ordering")]
    [InlineData("/api/v1/events/?limit=abc", "limit")]
    [InlineData("/api/v1/events/?device_id=a%00b", "device_id")]
    [InlineData("/api/v1/events/stream?device_id=%00", "device_id")]
    [InlineData("/api/v1/events/?limit=0", "limit")]
    [InlineData("/api/v1/events/?limit=1001", "limit")]
    [InlineData("/api/v1/events/?limit=99999999999999999999", "limit")]
    // A number followed by NUL is not that number (the runtime's parser alone reads "5\0" as 5).
    [InlineData("/api/v1/events/?limit=5%00", "limit")]
    [InlineData("/api/v1/inventory_device_operation/?offset=0%00", "offset")]
    [InlineData("/api/v1/inventory_device/?limit=10%00%00", "limit")]
    [InlineData("/api/v1/inventory_device_log/?operation_id=1%00", "operation_id")]
    [InlineData("/api/v1/events/?after=0-1%00", "after")]
    [InlineData("/api/v1/events/?type=,", "type")]
    [InlineData("/api/v1/events/stream?type=%20,%20", "type")]
    public async Task EveryListRefusesAnOrderingOrLimitItCannotApply(string url, string parameter)
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync(url);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal([parameter], problem["errors"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task TokensAndWebhooksAreListedInTheOrderAskedFor()
    {
        using var admin = factory.Admin();
        await factory.TokenAsync($"{Seeder.Unique("lister")}@example.com", ["devices:read"]);
        await factory.TokenAsync($"{Seeder.Unique("lister")}@example.com", ["devices:read"]);
        for (var i = 0; i < 2; i++)
        {
            var created = await admin.PostJsonAsync("/api/v1/webhook/", new JsonObject
            {
                ["url"] = "http://127.0.0.1:9/hook", ["secret"] = new string('s', 16), ["events"] = new JsonArray("*"),
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        foreach (var list in new[] { Api.Tokens, "/api/v1/webhook/" })
        {
            var ascending = Ids(await admin.GetJsonAsync($"{list}?ordering=id&limit=1000"));
            var descending = Ids(await admin.GetJsonAsync($"{list}?ordering=-id&limit=1000"));
            Assert.True(ascending.Length >= 2, list);
            Assert.Equal(ascending.Order(), ascending);
            Assert.Equal(ascending.Reverse(), descending);
        }
    }

    [Fact]
    public async Task FieldsProjectionKeepsOnlyTheNamedFieldsOfEachResult()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        await Seeder.OperationAsync(admin, code);

        var operations = await admin.GetJsonAsync($"{Api.Operations}?device_id={code}&fields=id,status,location");
        var devices = await admin.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(device["organization"]!.GetValue<string>())}&fields=device_id");

        Assert.Equal(1, operations["count"]!.GetValue<int>());
        Assert.Equal(["id", "status", "location"], operations["results"]![0]!.AsObject().Select(p => p.Key));
        Assert.True(JsonNode.DeepEquals(new JsonArray(new JsonObject { ["device_id"] = code }), devices["results"]));
    }

    [Fact]
    public async Task FieldsProjectionKeepsTheEventFeedsCursorAndOnlyTheNamedFieldsOfEachEvent()
    {
        using var admin = factory.Admin();
        var code = (await Seeder.DeviceAsync(admin))["device_id"]!.GetValue<string>();
        // A new device is three events; on PostgreSQL the feed shows them once every older
        // transaction in the cluster has ended (another test's, say), a moment after the write.
        var deadline = DateTime.UtcNow.AddSeconds(8);
        JsonObject whole;
        while ((whole = await admin.GetJsonAsync($"/api/v1/events/?device_id={code}"))["results"]!.AsArray().Count < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "The device's events did not show in the feed.");
            await Task.Delay(25);
        }

        var projected = await admin.GetJsonAsync($"/api/v1/events/?device_id={code}&fields=id,type");

        Assert.NotNull(projected["cursor"]);
        Assert.NotNull(projected["next"]);
        Assert.All(projected["results"]!.AsArray(), e => Assert.Equal(["id", "type"], e!.AsObject().Select(p => p.Key)));
        Assert.Equal(whole["results"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()),
            projected["results"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()));
        var refused = await (await admin.GetAsync("/api/v1/events/?fields=id,secret_sauce")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("secret_sauce", refused.Messages("fields")[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task FieldsProjectionWithAnUnknownFieldReturns400()
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync($"{Api.Log}?fields=id,secret_sauce");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("secret_sauce", problem.Messages("fields")[0], StringComparison.Ordinal);
    }
}
