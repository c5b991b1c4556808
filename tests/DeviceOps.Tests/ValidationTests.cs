using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

/// <summary>
/// Bad input gets a clear error and loses nothing: every refused write answers a problem that
/// names each bad field, and the operation, its device, the device's history and the lists they
/// appear in read exactly as before.
/// </summary>
public sealed class ValidationTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private const string MissingId = "987654321";

    /// <summary>A device with an open operation, an admin client to look with and a writer token to write with.</summary>
    private sealed record World(HttpClient Writer, HttpClient Admin, string Organization, int DeviceId, string DeviceCode,
        int OperationId) : IDisposable
    {
        public string OperationUrl => $"{Api.Operations}{OperationId}/";

        public string DeviceUrl => $"{Api.Devices}{DeviceId}/";

        public void Dispose()
        {
            Writer.Dispose();
            Admin.Dispose();
        }
    }

    /// <summary>What a refused write must leave as it was.</summary>
    private sealed record Snapshot(JsonObject Operation, JsonObject Device, int History, int Operations, int Devices);

    private async Task<World> SeedAsync()
    {
        var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var writer = await factory.ClientAsync($"{Seeder.Unique("writer")}@example.com",
            ["devices:read", "devices:write", "operations:read", "operations:write"]);
        return new World(writer, admin, device["organization"]!.GetValue<string>(), device["id"]!.GetValue<int>(),
            device["device_id"]!.GetValue<string>(), operation["id"]!.GetValue<int>());
    }

    private static async Task<Snapshot> SnapshotAsync(World world)
    {
        var operations = await world.Admin.GetJsonAsync($"{Api.Operations}?device_id={Uri.EscapeDataString(world.DeviceCode)}");
        var devices = await world.Admin.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(world.Organization)}");
        return new Snapshot(
            await world.Admin.GetJsonAsync(world.OperationUrl),
            await world.Admin.GetJsonAsync(world.DeviceUrl),
            (await Seeder.HistoryAsync(world.Admin, world.DeviceCode)).Count,
            operations["count"]!.GetValue<int>(),
            devices["count"]!.GetValue<int>());
    }

    private static async Task AssertUnchangedAsync(World world, Snapshot before)
    {
        var after = await SnapshotAsync(world);
        AssertSameJson(before.Operation, after.Operation, "operation");
        AssertSameJson(before.Device, after.Device, "device");
        Assert.Equal(before.History, after.History);
        Assert.Equal(before.Operations, after.Operations);
        Assert.Equal(before.Devices, after.Devices);
    }

    private static void AssertSameJson(JsonObject expected, JsonObject actual, string what) =>
        Assert.True(JsonNode.DeepEquals(expected, actual),
            $"The {what} changed.\nBefore: {expected.ToJsonString()}\nAfter:  {actual.ToJsonString()}");

    /// <summary>A valid PUT of the seeded operation that changes nothing, with <paramref name="with"/> merged in.</summary>
    private static JsonObject PutBody(World world, JsonObject? with = null)
    {
        var body = new JsonObject
        {
            ["device_id"] = world.DeviceCode,
            ["operation_type"] = "maintenance",
            ["status"] = "in_progress",
            ["operator_id"] = "OP-456",
            ["description"] = "Routine maintenance check",
        };
        foreach (var (key, value) in with ?? [])
        {
            body[key] = value?.DeepClone();
        }
        return body;
    }

    /// <summary>A valid device PUT that changes nothing, with <paramref name="with"/> merged in.</summary>
    private static async Task<JsonObject> DevicePutBodyAsync(World world, JsonObject? with = null)
    {
        var device = await world.Admin.GetJsonAsync(world.DeviceUrl);
        var body = new JsonObject();
        foreach (var field in new[] { "device_id", "device_name", "serial_number", "device_type", "organization", "operational_status",
                     "location", "assigned_user", "configuration", "maintenance_notes", "next_maintenance" })
        {
            body[field] = device[field]?.DeepClone();
        }
        foreach (var (key, value) in with ?? [])
        {
            body[key] = value?.DeepClone();
        }
        return body;
    }

    private static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();

    private static Task<HttpResponseMessage> SendAsync(World world, string method, string target, HttpContent content)
    {
        var url = (method, target) switch
        {
            ("POST", "operation") => Api.Operations,
            ("POST", "device") => Api.Devices,
            (_, "operation") => world.OperationUrl,
            _ => world.DeviceUrl,
        };
        return world.Writer.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = content });
    }

    private static void AssertErrorKeys(JsonObject problem, params string[] fields)
    {
        var errors = problem["errors"]!.AsObject();
        foreach (var field in fields)
        {
            Assert.True(errors.ContainsKey(field), $"errors lacks {field}: {errors.ToJsonString()}");
            Assert.NotEmpty(problem.Messages(field));
            Assert.All(problem.Messages(field), m => Assert.False(string.IsNullOrWhiteSpace(m)));
        }
    }

    // ---- Unknown fields -------------------------------------------------------------------

    [Fact]
    public async Task PutWithUnknownFieldsReturns400NamingEachAndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl,
            PutBody(world, new JsonObject { ["colour"] = "red", ["priority"] = 1, ["location"] = "Building B" }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "colour", "priority");
        Assert.Equal(2, problem["errors"]!.AsObject().Count);
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PatchWithUnknownFieldReturns400NamingItAndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl,
            new JsonObject { ["location"] = "Building B", ["firmware_version"] = "3.0.0" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "firmware_version");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PostOperationWithUnknownFieldReturns400AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = world.DeviceCode,
            ["operation_type"] = "inspection",
            ["assignee"] = "someone",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "assignee");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task DevicePatchWithUnknownFieldReturns400NamingItAndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PatchJsonAsync(world.DeviceUrl,
            new JsonObject { ["location"] = "Building B", ["rack"] = "R12" });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "rack");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task DevicePutWithUnknownFieldReturns400NamingItAndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.DeviceUrl,
            await DevicePutBodyAsync(world, new JsonObject { ["location"] = "Building B", ["owner"] = "ops" }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "owner");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task DevicePostWithUnknownFieldReturns400AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var code = Seeder.Unique("DEV");

        var response = await world.Writer.PostJsonAsync(Api.Devices, new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = "Access point",
            ["serial_number"] = Seeder.Unique("SN"),
            ["device_type"] = "access_point",
            ["organization"] = world.Organization,
            ["vlan"] = 12,
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "vlan");
        await AssertUnchangedAsync(world, before);
        Assert.Empty(await Seeder.HistoryAsync(world.Admin, code));
    }

    // ---- Read-only fields -----------------------------------------------------------------

    [Fact]
    public async Task PutBackWhatGetReturnedSucceedsAndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, before.Operation);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var after = await SnapshotAsync(world);
        Assert.Equal(before.History, after.History);
        Assert.Equal(before.Operation["updated_at"]!.GetValue<string>(), after.Operation["updated_at"]!.GetValue<string>());
        Assert.Equal(before.Device["last_updated"]!.GetValue<string>(), after.Device["last_updated"]!.GetValue<string>());
    }

    [Fact]
    public async Task PutBackOfAFullyDescribedOperationSucceedsAndLeavesNoEntry()
    {
        using var world = await SeedAsync();
        var described = await world.Writer.PatchJsonAsync(world.OperationUrl, new JsonObject
        {
            ["assigned_user"] = "tech@example.com",
            ["next_maintenance"] = "2024-02-15T10:00:00.123456+01:00",
            ["maintenance_notes"] = "Replace fan tray",
            ["notes"] = "Parts ordered",
            ["configuration"] = new JsonObject { ["monitoring_enabled"] = true, ["alert_level"] = "high", ["ports"] = 48 },
        });
        Assert.True(described.StatusCode == HttpStatusCode.OK, await described.Content.ReadAsStringAsync());
        var before = await SnapshotAsync(world);
        Assert.Equal("2024-02-15T09:00:00.123456Z", before.Operation["next_maintenance"]!.GetValue<string>());

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, before.Operation);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task DevicePutBackOfWhatGetReturnedSucceedsAndLeavesNoEntry()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.DeviceUrl, before.Device);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutWithOtherValuesInReadOnlyFieldsIgnoresThem()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, new JsonObject
        {
            ["id"] = 424242,
            ["created_at"] = "not even a timestamp",
            ["updated_at"] = "2001-01-01T00:00:00Z",
            ["last_updated"] = 17,
            ["updated_by"] = "mallory@example.com",
            ["operational_history"] = new JsonArray(new JsonObject { ["action"] = "forged" }),
            ["device_name"] = "Renamed",
            ["serial_number"] = "FORGED-SERIAL",
            ["device_type"] = "Not A Slug",
            ["organization"] = "Somebody Else",
        }));

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var body = await response.BodyAsync();
        Assert.Equal(world.OperationId, body["id"]!.GetValue<int>());
        var device = await world.Admin.GetJsonAsync(world.DeviceUrl);
        foreach (var field in new[] { "device_name", "serial_number", "device_type", "organization", "created_at", "updated_by" })
        {
            Assert.True(JsonNode.DeepEquals(before.Device[field], device[field]), $"{field} changed to {device[field]}");
        }
        Assert.Equal(before.History, (await Seeder.HistoryAsync(world.Admin, world.DeviceCode)).Count);
    }

    // ---- Wrong types, bad values, limits ----------------------------------------------------

    /// <summary>An operation request's bad field and the key its message must be under.</summary>
    public static TheoryData<string, string> BadOperationFields => new()
    {
        { """{"status": 5}""", "status" },
        { """{"status": "done"}""", "status" },
        { """{"operation_type": "Not A Slug"}""", "operation_type" },
        { """{"operator_id": 42}""", "operator_id" },
        { """{"operational_status": "broken"}""", "operational_status" },
        { """{"operational_status": true}""", "operational_status" },
        { """{"configuration": "x"}""", "configuration" },
        { """{"configuration": null}""", "configuration" },
        { """{"configuration": {"monitoring_enabled": "yes"}}""", "configuration.monitoring_enabled" },
        { """{"configuration": {"alert_level": "severe"}}""", "configuration.alert_level" },
        { """{"configuration": {"firmware_version": 3}}""", "configuration.firmware_version" },
        { """{"configuration": {"ports": {"eth0": "up"}}}""", "configuration.ports" },
        { """{"assigned_user": "not-an-email"}""", "assigned_user" },
        { """{"assigned_user": "two@@example.com"}""", "assigned_user" },
        { """{"started_at": "2024-01-15T14:30:00"}""", "started_at" },
        { """{"started_at": "yesterday"}""", "started_at" },
        { """{"completed_at": "2024-13-45T99:00:00Z"}""", "completed_at" },
        { """{"next_maintenance": 1705329000}""", "next_maintenance" },
        { """{"next_maintenance": "2024-02-15"}""", "next_maintenance" },
        { $$"""{"description": "{{new string('d', 2001)}}"}""", "description" },
        { $$"""{"location": "{{new string('l', 201)}}"}""", "location" },
        { $$"""{"notes": "{{new string('n', 10_001)}}"}""", "notes" },
        { $$"""{"justification": "{{new string('j', 2001)}}"}""", "justification" },
        { $$$"""{"configuration": {"network_profile": "{{{new string('p', 1025)}}}"}}""", "configuration.network_profile" },
        { """{"justification": 5}""", "justification" },
        { """{"operator_id": "OP\u0000456"}""", "operator_id" },
        { """{"started_at": "2024-02-30T10:00:00Z"}""", "started_at" },
        { """{"started_at": "2024-01-15T14:30:00+25:00"}""", "started_at" },
        { """{"started_at": "2024-01-15T14:30:00+0100"}""", "started_at" },
        { """{"completed_at": ""}""", "completed_at" },
        { """{"location": "Building\u0000B"}""", "location" },
        // RFC 3339 and nothing looser: the general parser took these.
        { """{"started_at": "2024-01-15T14:30:00 Z"}""", "started_at" },
        { """{"started_at": "2024-01-15T14:30:00,5Z"}""", "started_at" },
        { """{"started_at": "2024-01-15T14:30:00Z\n"}""", "started_at" },
        { """{"configuration": {"ports": 1e309}}""", "configuration.ports" },
        { """{"configuration": {"ports": -1E400}}""", "configuration.ports" },
        { """{"configuration": {"ports": 0e99999999999}}""", "configuration.ports" },
        { """{"configuration": {"ports": 1e-2147483649}}""", "configuration.ports" },
    };

    [Theory]
    [MemberData(nameof(BadOperationFields))]
    public async Task PatchWithBadFieldReturns400NamingItAndChangesNothing(string json, string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = Parse(json);
        // A valid change beside the bad one must not be applied either.
        body["maintenance_notes"] = "Should not be saved";

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl, body);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(BadOperationFields))]
    public async Task PutWithBadFieldReturns400NamingItAndChangesNothing(string json, string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, Parse(json)));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutWithSeveralBadFieldsReturnsEveryFieldsMessageInOne400()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, new JsonObject
        {
            ["status"] = 5,
            ["operational_status"] = "broken",
            ["assigned_user"] = "nobody",
            ["started_at"] = "2024-01-15 14:30",
            ["description"] = new string('d', 2001),
            ["location"] = new string('l', 201),
            ["configuration"] = new JsonObject { ["monitoring_enabled"] = "yes", ["alert_level"] = "severe" },
            ["colour"] = "red",
        }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        string[] expected =
        [
            "status", "operational_status", "assigned_user", "started_at", "description", "location",
            "configuration.monitoring_enabled", "configuration.alert_level", "colour",
        ];
        AssertErrorKeys(problem, expected);
        Assert.Equal(expected.Order(StringComparer.Ordinal), problem["errors"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PostOperationWithBadFieldsReturns400AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = world.DeviceCode,
            ["operation_type"] = "relocation",
            ["status"] = "finished",
            ["location"] = new string('l', 201),
            ["started_at"] = "garbage",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "status", "location", "started_at");
        await AssertUnchangedAsync(world, before);
    }

    /// <summary>A device request's bad field and the key its message must be under.</summary>
    public static TheoryData<string, string> BadDeviceFields => new()
    {
        { """{"operational_status": "broken"}""", "operational_status" },
        { """{"assigned_user": "not-an-email"}""", "assigned_user" },
        { """{"configuration": "x"}""", "configuration" },
        { """{"configuration": {"monitoring_enabled": "yes"}}""", "configuration.monitoring_enabled" },
        { """{"configuration": {"alert_level": "severe"}}""", "configuration.alert_level" },
        { """{"next_maintenance": "2024-02-15T10:00:00"}""", "next_maintenance" },
        { $$"""{"location": "{{new string('l', 201)}}"}""", "location" },
        { """{"device_type": "Network Switch"}""", "device_type" },
        { """{"device_name": ""}""", "device_name" },
        { """{"serial_number": null}""", "serial_number" },
        { """{"organization": {"id": 1}}""", "organization" },
        { """{"organization": "No Such Organization 7f3a"}""", "organization" },
        { """{"organization": "a\u0000b"}""", "organization" },
    };

    [Theory]
    [MemberData(nameof(BadDeviceFields))]
    public async Task DevicePatchWithBadFieldReturns400NamingItAndChangesNothing(string json, string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = Parse(json);
        body["maintenance_notes"] = "Should not be saved";

        var response = await world.Writer.PatchJsonAsync(world.DeviceUrl, body);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(BadDeviceFields))]
    public async Task DevicePutWithBadFieldReturns400NamingItAndChangesNothing(string json, string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.DeviceUrl, await DevicePutBodyAsync(world, Parse(json)));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task FieldGivenTwiceReturns400NamingIt()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        // Which of the two a parser keeps differs between libraries; the server must not guess.
        var json = $$"""
            {"device_id": "{{world.DeviceCode}}", "operation_type": "maintenance", "status": "completed", "status": "cancelled",
             "location": "Building B"}
            """;

        var response = await world.Writer.PutAsync(world.OperationUrl, Api.Json(json));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "status");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task ConfigurationGrowingPastItsBoundOverSeveralPatchesReturns400()
    {
        using var world = await SeedAsync();
        var first = new JsonObject();
        for (var i = 0; i < 60; i++)
        {
            first[$"port_{i}"] = "up";
        }
        var accepted = await world.Writer.PatchJsonAsync(world.DeviceUrl, new JsonObject { ["configuration"] = first });
        Assert.True(accepted.StatusCode == HttpStatusCode.OK, await accepted.Content.ReadAsStringAsync());
        var before = await SnapshotAsync(world);
        var second = new JsonObject();
        for (var i = 0; i < 10; i++)
        {
            second[$"vlan_{i}"] = i;
        }

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl, new JsonObject
        {
            ["configuration"] = second,
            ["location"] = "Building B",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "configuration");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task ConfigurationWithTooManyKeysInOneRequestReturns400()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var configuration = new JsonObject();
        for (var i = 0; i < 65; i++)
        {
            configuration[$"key_{i}"] = i;
        }

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl, new JsonObject { ["configuration"] = configuration });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "configuration");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task ForbiddenDeviceTransitionInOperationPutReturns409AndAppliesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        // active -> provisioning is not an arrow; the valid changes beside it must not be applied.
        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, new JsonObject
        {
            ["status"] = "completed",
            ["operational_status"] = "provisioning",
            ["location"] = "Building B",
            ["assigned_user"] = "tech@example.com",
        }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(["decommissioned", "inactive", "maintenance"],
            problem["allowed_next_states"]!.AsArray().Select(s => s!.GetValue<string>()).Order(StringComparer.Ordinal));
        await AssertUnchangedAsync(world, before);
    }

    // ---- Required fields and cross-field rules ----------------------------------------------

    [Theory]
    [InlineData("device_id")]
    [InlineData("operation_type")]
    [InlineData("status")]
    public async Task PutWithoutRequiredFieldReturns400NamingIt(string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = PutBody(world, new JsonObject { ["location"] = "Building B" });
        body.Remove(field);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, body);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [InlineData("device_id")]
    [InlineData("operation_type")]
    [InlineData("status")]
    public async Task PutWithRequiredFieldNullReturns400NamingIt(string field)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = PutBody(world, new JsonObject { ["location"] = "Building B" });
        body[field] = null;

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, body);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, field);
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutWithEmptyObjectNamesEveryRequiredField()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, new JsonObject());

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "device_id", "operation_type", "status");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutMovingOperationToAnotherDeviceReturns400AndChangesNeither()
    {
        using var world = await SeedAsync();
        var other = await Seeder.DeviceAsync(world.Admin, world.Organization);
        var otherUrl = $"{Api.Devices}{other["id"]!.GetValue<int>()}/";
        var otherBefore = await world.Admin.GetJsonAsync(otherUrl);
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, new JsonObject
        {
            ["device_id"] = other["device_id"]!.GetValue<string>(),
            ["location"] = "Building B",
        }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "device_id");
        await AssertUnchangedAsync(world, before);
        AssertSameJson(otherBefore, await world.Admin.GetJsonAsync(otherUrl), "other device");
    }

    [Fact]
    public async Task DevicePutChangingItsInventoryCodeReturns400()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync(world.DeviceUrl,
            await DevicePutBodyAsync(world, new JsonObject { ["device_id"] = Seeder.Unique("DEV"), ["location"] = "Building B" }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "device_id");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task DevicePostWithTakenInventoryCodeOrSerialReturns409AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = new JsonObject
        {
            ["device_id"] = world.DeviceCode,
            ["device_name"] = "Twin",
            ["serial_number"] = Seeder.Unique("SN"),
            ["device_type"] = "network_switch",
            ["organization"] = world.Organization,
        };

        var sameCode = await world.Writer.PostJsonAsync(Api.Devices, body);
        body["device_id"] = Seeder.Unique("DEV");
        body["serial_number"] = before.Device["serial_number"]!.GetValue<string>();
        var sameSerial = await world.Writer.PostJsonAsync(Api.Devices, body);

        await sameCode.AssertProblemAsync(HttpStatusCode.Conflict, "duplicate");
        await sameSerial.AssertProblemAsync(HttpStatusCode.Conflict, "duplicate");
        await AssertUnchangedAsync(world, before);
        Assert.Empty(await Seeder.HistoryAsync(world.Admin, body["device_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task PatchMovingOperationToUnknownDeviceReturns400()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl, new JsonObject { ["device_id"] = Seeder.Unique("NOPE") });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "device_id");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutWithCompletedAtBeforeStartedAtReturns400AndAppliesNoDeviceEffect()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        // The device effects are valid on their own; they must not survive the refused request.
        var response = await world.Writer.PutJsonAsync(world.OperationUrl, PutBody(world, new JsonObject
        {
            ["status"] = "completed",
            ["started_at"] = "2024-01-15T14:30:00Z",
            ["completed_at"] = "2024-01-15T14:00:00Z",
            ["location"] = "Building B",
            ["operational_status"] = "maintenance",
            ["configuration"] = new JsonObject { ["alert_level"] = "high" },
        }));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "completed_at");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PatchWithCompletedAtBeforeStoredStartedAtReturns400()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        // The operation was opened in progress, so the server stamped started_at with the fixture's clock (2026-03-01).
        Assert.NotNull(before.Operation["started_at"]);

        var response = await world.Writer.PatchJsonAsync(world.OperationUrl, new JsonObject
        {
            ["completed_at"] = "2020-01-01T00:00:00Z",
            ["notes"] = "done",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "completed_at");
        await AssertUnchangedAsync(world, before);
    }

    // ---- Bodies that are not a JSON object ----------------------------------------------------

    public static TheoryData<string, string> Writes => new()
    {
        { "PUT", "operation" },
        { "PATCH", "operation" },
        { "POST", "operation" },
        { "PUT", "device" },
        { "PATCH", "device" },
        { "POST", "device" },
    };

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task MalformedJsonReturns400MalformedJsonAndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await SendAsync(world, method, target, Api.Json("""{"location": "Building B", "status": """));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task LoneSurrogateEscapeReturns400MalformedJsonAndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await SendAsync(world, method, target, Api.Json("""{"location": "Building \ud800 B"}"""));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        Assert.Contains("byte 14", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertUnchangedAsync(world, before);
    }

    /// <summary>Strings that are not text, in each place a body holds strings.</summary>
    public static TheoryData<byte[]> UnreadableBodies => new()
    {
        Encoding.UTF8.GetBytes("""{"notes": "\udfff\ud800x"}"""),
        Encoding.UTF8.GetBytes("""{"\ud800": 1}"""),
        Encoding.UTF8.GetBytes("""{"configuration": {"vlan": "\udc00"}}"""),
        Encoding.UTF8.GetBytes("""{"configuration": {"\ud800": 1}}"""),
        Around("{\"notes\": \"", [0xff], "\"}"),
        Around("""{"no""", [0xc3, 0x28], """tes": 1}"""),
    };

    private static byte[] Around(string before, byte[] notUtf8, string after) =>
        [.. Encoding.UTF8.GetBytes(before), .. notUtf8, .. Encoding.UTF8.GetBytes(after)];

    [Theory]
    [MemberData(nameof(UnreadableBodies))]
    public async Task StringThatIsNotTextReturns400MalformedJsonAndChangesNothing(byte[] body)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");

        var response = await SendAsync(world, "PATCH", "operation", content);

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task EmptyBodyReturns400AndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await SendAsync(world, method, target, Api.Json(""));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task ArrayBodyReturns400AndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await SendAsync(world, method, target, Api.Json("""[{"location": "Building B"}]"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.False(string.IsNullOrEmpty(problem["detail"]?.GetValue<string>()));
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task TextPlainBodyReturns415AndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await SendAsync(world, method, target,
            new StringContent("""{"location": "Building B"}""", Encoding.UTF8, "text/plain"));

        await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [InlineData("application/json; charset=iso-8859-1")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/xml")]
    public async Task NonJsonContentTypeReturns415(string contentType)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"location": "Building B"}"""));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);

        var response = await SendAsync(world, "PATCH", "operation", content);

        await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await AssertUnchangedAsync(world, before);
    }

    /// <summary>Nothing decodes a compressed body: a gzip body was read as broken JSON, a plain one marked br was applied.</summary>
    [Theory]
    [InlineData("gzip", true)]
    [InlineData("br", false)]
    [InlineData("deflate, identity", false)]
    public async Task ABodyWithAContentEncodingReturns415AndChangesNothing(string encoding, bool compress)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var json = Encoding.UTF8.GetBytes("""{"location": "Building Z"}""");
        if (compress)
        {
            using var packed = new MemoryStream();
            using (var gzip = new System.IO.Compression.GZipStream(packed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write(json);
            }
            json = packed.ToArray();
        }
        var content = new ByteArrayContent(json);
        content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        content.Headers.TryAddWithoutValidation("Content-Encoding", encoding);

        var response = await SendAsync(world, "PATCH", "operation", content);

        var problem = await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        Assert.Contains("Content-Encoding", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json; charset=UTF-8")]
    public async Task JsonWithAUtf8CharsetQuotedOrNotIsAccepted(string contentType)
    {
        using var world = await SeedAsync();
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"location": "Building Q"}"""));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);

        var response = await SendAsync(world, "PATCH", "operation", content);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("Building Q", (await world.Admin.GetJsonAsync(world.DeviceUrl))["location"]!.GetValue<string>());
    }

    [Fact]
    public async Task DeeplyNestedBodyReturns400AndChangesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var json = """{"configuration": """ + string.Concat(Enumerable.Repeat("""{"a": """, 40)) + "1" + new string('}', 41);

        var response = await SendAsync(world, "PATCH", "operation", Api.Json(json));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task BodyWithoutContentTypeReturns415()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"location": "Building B"}"""));

        var response = await SendAsync(world, "PATCH", "operation", content);

        await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await AssertUnchangedAsync(world, before);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task BodyOverOneMebibyteReturns413AndChangesNothing(string method, string target)
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var json = new JsonObject { ["maintenance_notes"] = new string('x', 1024 * 1024) }.ToJsonString();

        var response = await SendAsync(world, method, target, Api.Json(json));

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task StreamedBodyOverOneMebibyteWithoutLengthReturns413()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var bytes = Encoding.UTF8.GetBytes(new JsonObject { ["maintenance_notes"] = new string('x', 1100 * 1024) }.ToJsonString());
        var content = new StreamContent(new MemoryStream(bytes));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        // No Content-Length: the server must stop reading at the limit, not trust a header.
        content.Headers.ContentLength = null;

        var response = await SendAsync(world, "PATCH", "operation", content);

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task BodyJustUnderOneMebibyteIsNotRefusedForItsSize()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        // Under the byte limit but over the field's own limit: the answer is about the field, not the size.
        var json = new JsonObject { ["maintenance_notes"] = new string('x', 1000 * 1024) }.ToJsonString();

        var response = await SendAsync(world, "PATCH", "operation", Api.Json(json));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "maintenance_notes");
        await AssertUnchangedAsync(world, before);
    }

    // ---- Missing targets --------------------------------------------------------------------

    [Fact]
    public async Task PutToMissingOperationReturns404AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PutJsonAsync($"{Api.Operations}{MissingId}/", PutBody(world, new JsonObject
        {
            ["location"] = "Building B",
            ["status"] = "completed",
        }));

        await response.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await world.Admin.GetAsync($"{Api.Operations}{MissingId}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PatchToMissingOperationReturns404()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);

        var response = await world.Writer.PatchJsonAsync($"{Api.Operations}{MissingId}/", new JsonObject { ["location"] = "Building B" });

        await response.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await AssertUnchangedAsync(world, before);
    }

    [Fact]
    public async Task PutToMissingDeviceReturns404AndCreatesNothing()
    {
        using var world = await SeedAsync();
        var before = await SnapshotAsync(world);
        var body = await DevicePutBodyAsync(world, new JsonObject { ["location"] = "Building B" });

        var response = await world.Writer.PutJsonAsync($"{Api.Devices}{MissingId}/", body);

        await response.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await world.Admin.GetAsync($"{Api.Devices}{MissingId}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await AssertUnchangedAsync(world, before);
    }

    // ---- List query parameters --------------------------------------------------------------

    public static TheoryData<string, string> BadListQueries => new()
    {
        { Api.Operations + "?limit=0", "limit" },
        { Api.Operations + "?limit=abc", "limit" },
        { Api.Operations + "?limit=1001", "limit" },
        { Api.Operations + "?offset=-1", "offset" },
        { Api.Operations + "?ordering=nope", "ordering" },
        { Api.Operations + "?status=bogus", "status" },
        { Api.Operations + "?since=yesterday", "since" },
        { Api.Operations + "?until=2024-01-15T14:30:00", "until" },
        { Api.Devices + "?limit=0", "limit" },
        { Api.Devices + "?ordering=-nope", "ordering" },
        { Api.Devices + "?operational_status=bogus", "operational_status" },
        { Api.Devices + "?next_maintenance_before=soon", "next_maintenance_before" },
        { Api.Log + "?limit=abc", "limit" },
        { Api.Log + "?since=yesterday", "since" },
        { Api.Log + "?operation_id=abc", "operation_id" },
        { Api.Log + "?ordering=nope", "ordering" },
        { Api.Organizations + "?limit=0", "limit" },
        { Api.Tokens + "?limit=abc", "limit" },
        { Api.Devices + "?location=Building%00B", "location" },
        { Api.Operations + "?device_id=DEV%00-1", "device_id" },
        { Api.Log + "?performed_by=a%00b", "performed_by" },
    };

    [Theory]
    [MemberData(nameof(BadListQueries))]
    public async Task BadListQueryParameterReturns400NamingIt(string url, string parameter)
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync(url);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, parameter);
    }

    [Fact]
    public async Task SeveralBadListQueryParametersAreReportedTogether()
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync($"{Api.Operations}?limit=0&ordering=nope&status=bogus&since=yesterday");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        AssertErrorKeys(problem, "limit", "ordering", "status", "since");
    }
}
