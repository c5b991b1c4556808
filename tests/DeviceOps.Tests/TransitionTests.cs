using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class TransitionTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private static string Code(JsonObject device) => device["device_id"]!.GetValue<string>();

    [Fact]
    public async Task MovingACompletedOperationBackReturns409WithNoAllowedStatesAndChangesNothing()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "completed");
        var before = await admin.GetJsonAsync(Api.OperationUrl(operation));
        var history = await Seeder.HistoryAsync(admin, Code(device));

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "in_progress", ["location"] = "Elsewhere" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal("status", problem["field"]!.GetValue<string>());
        Assert.Equal("completed", problem["from"]!.GetValue<string>());
        Assert.Equal("in_progress", problem["to"]!.GetValue<string>());
        Assert.Empty(problem["allowed_next_states"]!.AsArray());
        Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync(Api.OperationUrl(operation))));
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, Code(device))).Count);
    }

    [Fact]
    public async Task MovingAScheduledOperationBackToPendingListsEveryStateReachableForward()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "scheduled");

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "pending" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(["in_progress", "completed", "failed", "cancelled"],
            problem["allowed_next_states"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Fact]
    public async Task PendingToCompletedInOneRequestRecordsTheWorkAndStampsCompletedAt()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "pending");

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "completed" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal("completed", body["status"]!.GetValue<string>());
        Assert.Equal("2026-03-01T12:00:00Z", body["completed_at"]!.GetValue<string>());
        var entry = (await Seeder.HistoryAsync(admin, Code(device)))[0]!;
        Assert.Equal("operation_status_change", entry["action"]!.GetValue<string>());
        Assert.Equal("pending", entry["from_status"]!.GetValue<string>());
        Assert.Equal("completed", entry["to_status"]!.GetValue<string>());
    }

    [Fact]
    public async Task StartingAnOperationStampsStartedAt()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "scheduled");
        Assert.Null(operation["started_at"]);

        var body = await (await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "in_progress" })).BodyAsync();

        Assert.Equal("2026-03-01T12:00:00Z", body["started_at"]!.GetValue<string>());
    }

    [Fact]
    public async Task ForbiddenDeviceTransitionReturns409AndLeavesTheOperationUnchangedToo()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, deviceStatus: "provisioning", operationStatus: "in_progress");
        var before = await admin.GetJsonAsync(Api.OperationUrl(operation));

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation),
            new JsonObject { ["status"] = "completed", ["operational_status"] = "maintenance" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal("operational_status", problem["field"]!.GetValue<string>());
        Assert.Equal(["active", "decommissioned"], problem["allowed_next_states"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync(Api.OperationUrl(operation))));
        Assert.Equal("provisioning", (await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/"))["operational_status"]!.GetValue<string>());
    }

    [Fact]
    public async Task DecommissionedIsFinalForADevice()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin, status: "decommissioned");

        var response = await admin.PatchJsonAsync($"{Api.Devices}{device["id"]}/", new JsonObject { ["operational_status"] = "active" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Empty(problem["allowed_next_states"]!.AsArray());
    }

    [Fact]
    public async Task OverrideOfADeviceTransitionNeedsTheScopeAndRecordsTheJustification()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin, status: "decommissioned");
        var url = $"{Api.Devices}{device["id"]}/";
        using var writer = await factory.ClientAsync("writer@example.com", ["devices:read", "devices:write"]);
        using var supervisor = await factory.ClientAsync("supervisor@example.com", ["devices:read", "devices:write", "operations:override"]);
        var body = new JsonObject { ["operational_status"] = "active", ["justification"] = "Decommissioned by mistake, ticket OPS-17" };

        var refused = await writer.PatchJsonAsync(url, body);
        var applied = await supervisor.PatchJsonAsync(url, body);

        await refused.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        var entry = (await Seeder.HistoryAsync(admin, Code(device)))[0]!;
        Assert.Equal("status_change", entry["action"]!.GetValue<string>());
        Assert.Equal("decommissioned", entry["from_status"]!.GetValue<string>());
        Assert.Equal("active", entry["to_status"]!.GetValue<string>());
        Assert.Equal("supervisor@example.com", entry["performed_by"]!.GetValue<string>());
        Assert.Equal("Decommissioned by mistake, ticket OPS-17", entry["justification"]!.GetValue<string>());
    }

    [Fact]
    public async Task ReopeningACompletedOperationByOverrideClearsItsCompletionTime()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "pending");
        var completed = await (await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "completed" })).BodyAsync();
        Assert.NotNull(completed["completed_at"]);
        factory.Clock.Advance(TimeSpan.FromHours(1));

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation),
            new JsonObject { ["status"] = "in_progress", ["justification"] = "Closed too early, ticket OPS-9" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal("in_progress", body["status"]!.GetValue<string>());
        Assert.Null(body["completed_at"]);
        Assert.Equal(factory.Clock.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            body["started_at"]!.GetValue<string>());
        var entry = (await Seeder.HistoryAsync(admin, Code(device)))[0]!;
        Assert.Equal("completed", entry["from_status"]!.GetValue<string>());
        Assert.Equal("in_progress", entry["to_status"]!.GetValue<string>());
        Assert.Equal("Closed too early, ticket OPS-9", entry["justification"]!.GetValue<string>());

        // Completing it again stamps the new completion time.
        var again = await (await admin.PatchJsonAsync(Api.OperationUrl(operation), new JsonObject { ["status"] = "completed" })).BodyAsync();
        Assert.Equal(body["started_at"]!.GetValue<string>(), again["completed_at"]!.GetValue<string>());
    }

    [Fact]
    public async Task SettingTheSameStatusIsNoChangeAndLeavesNoEntry()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var history = await Seeder.HistoryAsync(admin, Code(device));

        var response = await admin.PatchJsonAsync(Api.OperationUrl(operation),
            new JsonObject { ["status"] = "in_progress", ["operational_status"] = "active" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, Code(device))).Count);
    }
}
