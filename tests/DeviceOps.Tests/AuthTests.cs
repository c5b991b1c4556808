using System.Data.Common;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace DeviceOps.Tests;

/// <summary>
/// Security through the real pipeline with real tokens: who may call, what they may touch, what
/// they may see, and that a refusal changes nothing.
/// </summary>
public sealed class AuthTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private static readonly string[] AllButAdmin =
        ["devices:read", "devices:write", "operations:read", "operations:write"];

    private static string Email(string prefix) => $"{Seeder.Unique(prefix)}@example.com";

    private static string Challenge(HttpResponseMessage response) =>
        response.Headers.NonValidated.TryGetValues("WWW-Authenticate", out var values) ? string.Join(", ", values) : "";

    private static async Task<JsonObject> CreateTokenAsync(HttpClient admin, JsonObject body)
    {
        var response = await admin.PostJsonAsync(Api.Tokens, body);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return await response.BodyAsync();
    }

    private static JsonObject TokenBody(string user, params string[] scopes) => new()
    {
        ["user"] = user,
        ["scopes"] = new JsonArray([.. scopes.Select(s => JsonValue.Create(s))]),
    };

    private static async Task<(JsonObject Operation, JsonObject Device, int History)> StateAsync(HttpClient admin, int operationId,
        int deviceId, string deviceCode) =>
        (await admin.GetJsonAsync($"{Api.Operations}{operationId}/"),
            await admin.GetJsonAsync($"{Api.Devices}{deviceId}/"),
            (await Seeder.HistoryAsync(admin, deviceCode)).Count);

    private static async Task AssertStateAsync(HttpClient admin, (JsonObject Operation, JsonObject Device, int History) before,
        int operationId, int deviceId, string deviceCode)
    {
        var after = await StateAsync(admin, operationId, deviceId, deviceCode);
        Assert.True(JsonNode.DeepEquals(before.Operation, after.Operation),
            $"The operation changed.\nBefore: {before.Operation.ToJsonString()}\nAfter:  {after.Operation.ToJsonString()}");
        Assert.True(JsonNode.DeepEquals(before.Device, after.Device),
            $"The device changed.\nBefore: {before.Device.ToJsonString()}\nAfter:  {after.Device.ToJsonString()}");
        Assert.Equal(before.History, after.History);
    }

    // ---- Authentication ---------------------------------------------------------------------

    [Theory]
    [InlineData("/api/v1/inventory_device_operation/")]
    [InlineData("/api/v1/inventory_device/")]
    [InlineData("/api/v1/inventory_device_log/")]
    [InlineData("/api/v1/organization/")]
    [InlineData("/api/v1/token/")]
    public async Task NoAuthorizationHeaderReturns401WithBearerChallenge(string url)
    {
        using var client = factory.Anonymous();

        var response = await client.GetAsync(url);

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        var challenge = Challenge(response);
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        Assert.DoesNotContain("error=", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoAuthorizationHeaderOnPutReturns401AndChangesNothing()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var (operationId, deviceId, code) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>(), device["device_id"]!.GetValue<string>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = factory.Anonymous();

        var response = await client.PutAsync($"{Api.Operations}{operationId}/", Api.Json(Api.SeedRequest.Replace("DEV-001", code, StringComparison.Ordinal)));

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Fact]
    public async Task UnknownTokenReturns401InvalidToken()
    {
        using var client = factory.WithToken("dop_this-token-was-never-issued-0000000000000");

        var response = await client.GetAsync(Api.Devices);

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        var challenge = Challenge(response);
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        Assert.Contains("error=\"invalid_token\"", challenge, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Basic xyz")]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Token test-bootstrap-secret-0123456789abcdef")]
    public async Task MalformedAuthorizationHeaderReturns401(string header)
    {
        using var client = factory.Anonymous();
        client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", header);

        var response = await client.GetAsync(Api.Devices);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("Bearer", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BootstrapSecretWithBasicSchemeIsNotAccepted()
    {
        using var client = factory.Anonymous();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes("admin:" + DeviceOpsFactory.BootstrapSecret)));

        var response = await client.GetAsync(Api.Tokens);

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        Assert.Contains("error=\"invalid_token\"", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokedTokenIsRefusedOnItsVeryNextRequest()
    {
        using var admin = factory.Admin();
        var created = await CreateTokenAsync(admin, TokenBody(Email("revoked"), "devices:read"));
        using var client = factory.WithToken(created["token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Api.Devices)).StatusCode);

        var revoke = await admin.DeleteAsync($"{Api.Tokens}{created["id"]!.GetValue<int>()}/");
        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        var response = await client.GetAsync(Api.Devices);

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        Assert.Contains("error=\"invalid_token\"", Challenge(response), StringComparison.Ordinal);
        var listed = await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(created["user"]!.GetValue<string>())}");
        Assert.NotNull(listed["results"]![0]!["revoked_at"]);
    }

    [Fact]
    public async Task RevokingAMissingTokenReturns404()
    {
        using var admin = factory.Admin();

        var response = await admin.DeleteAsync($"{Api.Tokens}987654321/");

        await response.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    // ---- Scopes -----------------------------------------------------------------------------

    [Fact]
    public async Task TokenWithoutWriteScopeGets403InsufficientScopeAndChangesNothing()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var (operationId, deviceId, code) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>(), device["device_id"]!.GetValue<string>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var reader = await factory.ClientAsync(Email("reader"), ["operations:read"]);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"{Api.Operations}{operationId}/")).StatusCode);

        var put = await reader.PutAsync($"{Api.Operations}{operationId}/", Api.Json(Api.SeedRequest.Replace("DEV-001", code, StringComparison.Ordinal)));
        var patch = await reader.PatchJsonAsync($"{Api.Operations}{operationId}/", new JsonObject { ["location"] = "Building B" });
        var post = await reader.PostJsonAsync(Api.Operations, new JsonObject { ["device_id"] = code, ["operation_type"] = "inspection" });

        foreach (var response in new[] { put, patch, post })
        {
            await response.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
            var challenge = Challenge(response);
            Assert.Contains("error=\"insufficient_scope\"", challenge, StringComparison.Ordinal);
            Assert.Contains("operations:write", challenge, StringComparison.Ordinal);
        }
        await AssertStateAsync(admin, before, operationId, deviceId, code);
        var operations = await admin.GetJsonAsync($"{Api.Operations}?device_id={Uri.EscapeDataString(code)}");
        Assert.Equal(1, operations["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task OperationsTokenCannotWriteOrReadDevicesDirectly()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var (operationId, deviceId, code) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>(), device["device_id"]!.GetValue<string>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = await factory.ClientAsync(Email("ops"), ["operations:read", "operations:write"]);

        var read = await client.GetAsync($"{Api.Devices}{deviceId}/");
        var patch = await client.PatchJsonAsync($"{Api.Devices}{deviceId}/", new JsonObject { ["location"] = "Building B" });

        await read.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await patch.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Fact]
    public async Task OverrideScopeAloneDoesNotGrantWrites()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operation = await Seeder.OperationAsync(admin, code, "completed");
        var (operationId, deviceId) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = await factory.ClientAsync(Email("override-only"), ["operations:read", "operations:override"]);

        var response = await client.PatchJsonAsync($"{Api.Operations}{operationId}/", new JsonObject
        {
            ["status"] = "in_progress",
            ["justification"] = "Reopening",
        });

        await response.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Fact]
    public async Task NonAdminTokenCannotCreateListOrRevokeTokens()
    {
        using var admin = factory.Admin();
        var victim = await CreateTokenAsync(admin, TokenBody(Email("victim"), "devices:read"));
        using var client = await factory.ClientAsync(Email("nonadmin"),
            ["devices:read", "devices:write", "operations:read", "operations:write", "operations:override"]);
        var user = Email("escalated");

        var create = await client.PostJsonAsync(Api.Tokens, TokenBody(user, "admin"));
        var list = await client.GetAsync(Api.Tokens);
        var revoke = await client.DeleteAsync($"{Api.Tokens}{victim["id"]!.GetValue<int>()}/");

        await create.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await list.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await revoke.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        var made = await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}");
        Assert.Equal(0, made["count"]!.GetValue<int>());
        using var victimClient = factory.WithToken(victim["token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await victimClient.GetAsync(Api.Devices)).StatusCode);
    }

    [Fact]
    public async Task MetricsAreServedWithoutATokenInPrometheusFormat()
    {
        using var admin = factory.Admin();
        await admin.GetAsync(Api.Devices);
        using var anonymous = factory.Anonymous();

        var response = await anonymous.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("http_requests_received_total", text, StringComparison.Ordinal);
        Assert.Contains("endpoint=\"/api/v1/inventory_device/\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminLimitedToAnOrganizationCannotManageTokensOrOrganizations()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        using var limited = await factory.ClientAsync(Email("limited-admin"), ["admin"], [organization]);
        var user = Email("escape");

        var create = await limited.PostJsonAsync(Api.Tokens, TokenBody(user, "admin"));
        var list = await limited.GetAsync(Api.Tokens);
        var newOrganization = await limited.PostJsonAsync(Api.Organizations, new JsonObject { ["name"] = Seeder.Unique("Org") });

        var problem = await create.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        Assert.Contains("not limited to organizations", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await list.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        await newOrganization.AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
        Assert.Equal(0, (await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}"))["count"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await limited.GetAsync(Api.Devices)).StatusCode);
    }

    // ---- Organization limits ----------------------------------------------------------------

    private sealed record TwoOrganizations(string A, string B, JsonObject DeviceA, JsonObject OperationA, JsonObject DeviceB,
        JsonObject OperationB)
    {
        public string CodeA => DeviceA["device_id"]!.GetValue<string>();

        public string CodeB => DeviceB["device_id"]!.GetValue<string>();

        public int DeviceIdB => DeviceB["id"]!.GetValue<int>();

        public int OperationIdB => OperationB["id"]!.GetValue<int>();
    }

    private static async Task<TwoOrganizations> SeedTwoOrganizationsAsync(HttpClient admin)
    {
        var a = await Seeder.OrganizationAsync(admin);
        var b = await Seeder.OrganizationAsync(admin);
        var (deviceA, operationA) = await Seeder.DeviceWithOperationAsync(admin, a);
        var (deviceB, operationB) = await Seeder.DeviceWithOperationAsync(admin, b);
        return new(a, b, deviceA, operationA, deviceB, operationB);
    }

    [Fact]
    public async Task TokenLimitedToOrganizationGets404ForAnotherOrganizationsDeviceAndOperation()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        var before = await StateAsync(admin, world.OperationIdB, world.DeviceIdB, world.CodeB);
        using var client = await factory.ClientAsync(Email("limited"), [.. AllButAdmin, "operations:override"], [world.A]);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"{Api.Devices}{world.DeviceA["id"]}/")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"{Api.Operations}{world.OperationA["id"]}/")).StatusCode);

        var deviceUrl = $"{Api.Devices}{world.DeviceIdB}/";
        var operationUrl = $"{Api.Operations}{world.OperationIdB}/";
        var devicePut = new JsonObject
        {
            ["device_name"] = "Taken over",
            ["serial_number"] = Seeder.Unique("SN"),
            ["device_type"] = "network_switch",
            ["organization"] = world.B,
            ["operational_status"] = "maintenance",
        };
        var responses = new[]
        {
            await client.GetAsync(deviceUrl),
            await client.PutJsonAsync(deviceUrl, devicePut),
            await client.PatchJsonAsync(deviceUrl, new JsonObject { ["location"] = "Elsewhere" }),
            await client.DeleteAsync(deviceUrl),
            await client.GetAsync(operationUrl),
            await client.PutAsync(operationUrl, Api.Json(Api.SeedRequest.Replace("DEV-001", world.CodeB, StringComparison.Ordinal))),
            await client.PatchJsonAsync(operationUrl, new JsonObject { ["status"] = "cancelled", ["justification"] = "mine now" }),
        };

        foreach (var response in responses)
        {
            var problem = await response.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            // The refusal is the same as for an id that never existed: nothing reveals B's device.
            Assert.DoesNotContain(world.CodeB, problem.ToJsonString(), StringComparison.Ordinal);
        }
        await AssertStateAsync(admin, before, world.OperationIdB, world.DeviceIdB, world.CodeB);
    }

    [Fact]
    public async Task TokenLimitedToOrganizationNeverListsAnotherOrganizationsRows()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        using var client = await factory.ClientAsync(Email("limited"), AllButAdmin, [world.A]);

        var devices = (await client.GetJsonAsync($"{Api.Devices}?limit=1000"))["results"]!.AsArray();
        var operations = (await client.GetJsonAsync($"{Api.Operations}?limit=1000"))["results"]!.AsArray();
        var log = (await client.GetJsonAsync($"{Api.Log}?limit=1000"))["results"]!.AsArray();
        var organizations = (await client.GetJsonAsync($"{Api.Organizations}?limit=1000"))["results"]!.AsArray();

        Assert.Equal([world.CodeA], devices.Select(d => d!["device_id"]!.GetValue<string>()));
        Assert.Equal([world.OperationA["id"]!.GetValue<int>()], operations.Select(o => o!["id"]!.GetValue<int>()));
        Assert.All(operations, o => Assert.Equal(world.A, o!["organization"]!.GetValue<string>()));
        Assert.NotEmpty(log);
        Assert.All(log, e => Assert.Equal(world.CodeA, e!["device_id"]!.GetValue<string>()));
        Assert.Equal([world.A], organizations.Select(o => o!["name"]!.GetValue<string>()));
        // Filters naming B's rows find nothing either.
        Assert.Equal(0, (await client.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(world.B)}"))["count"]!.GetValue<int>());
        Assert.Equal(0, (await client.GetJsonAsync($"{Api.Operations}?device_id={Uri.EscapeDataString(world.CodeB)}"))["count"]!.GetValue<int>());
        Assert.Equal(0, (await client.GetJsonAsync($"{Api.Log}?device_id={Uri.EscapeDataString(world.CodeB)}"))["count"]!.GetValue<int>());
        Assert.Equal(0, (await client.GetJsonAsync($"{Api.Log}?operation_id={world.OperationIdB}"))["count"]!.GetValue<int>());
        Assert.Equal(0, (await client.GetJsonAsync($"{Api.Organizations}?name={Uri.EscapeDataString(world.B)}"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task TokenLimitedToOrganizationGets404ForAnotherOrganizationsHistoryEntryAndOrganization()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        var entryB = (await Seeder.HistoryAsync(admin, world.CodeB))[0]!["id"]!.GetValue<long>();
        var organizationB = (await admin.GetJsonAsync($"{Api.Organizations}?name={Uri.EscapeDataString(world.B)}"))["results"]![0]!["id"]!.GetValue<int>();
        using var client = await factory.ClientAsync(Email("limited"), AllButAdmin, [world.A]);

        await (await client.GetAsync($"{Api.Log}{entryB}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.GetAsync($"{Api.Organizations}{organizationB}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task CreatingDeviceInOrganizationOutsideTheTokensListReturns400AndCreatesNothing()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        using var client = await factory.ClientAsync(Email("limited"), AllButAdmin, [world.A]);
        var code = Seeder.Unique("DEV");

        var response = await client.PostJsonAsync(Api.Devices, new JsonObject
        {
            ["device_id"] = code,
            ["device_name"] = "Smuggled switch",
            ["serial_number"] = Seeder.Unique("SN"),
            ["device_type"] = "network_switch",
            ["organization"] = world.B,
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.NotEmpty(problem.Messages("organization"));
        var devicesOfB = await admin.GetJsonAsync($"{Api.Devices}?organization={Uri.EscapeDataString(world.B)}");
        Assert.Equal([world.CodeB], devicesOfB["results"]!.AsArray().Select(d => d!["device_id"]!.GetValue<string>()));
        Assert.Empty(await Seeder.HistoryAsync(admin, code));
    }

    [Fact]
    public async Task MovingOwnDeviceIntoOrganizationOutsideTheTokensListReturns400AndChangesNothing()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        var deviceIdA = world.DeviceA["id"]!.GetValue<int>();
        var operationIdA = world.OperationA["id"]!.GetValue<int>();
        var before = await StateAsync(admin, operationIdA, deviceIdA, world.CodeA);
        using var client = await factory.ClientAsync(Email("limited"), AllButAdmin, [world.A]);

        var organizationIdB = (await admin.GetJsonAsync($"{Api.Organizations}?name={Uri.EscapeDataString(world.B)}"))["results"]![0]!["id"]!.GetValue<int>();

        var byName = await client.PatchJsonAsync($"{Api.Devices}{deviceIdA}/", new JsonObject { ["organization"] = world.B });
        var byId = await client.PatchJsonAsync($"{Api.Devices}{deviceIdA}/", new JsonObject { ["organization"] = organizationIdB });

        foreach (var response in new[] { byName, byId })
        {
            var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
            Assert.NotEmpty(problem.Messages("organization"));
        }
        await AssertStateAsync(admin, before, operationIdA, deviceIdA, world.CodeA);
    }

    [Fact]
    public async Task OpeningOperationOnAnotherOrganizationsDeviceIsRefusedAndCreatesNothing()
    {
        using var admin = factory.Admin();
        var world = await SeedTwoOrganizationsAsync(admin);
        var before = await StateAsync(admin, world.OperationIdB, world.DeviceIdB, world.CodeB);
        using var client = await factory.ClientAsync(Email("limited"), AllButAdmin, [world.A]);

        var response = await client.PostJsonAsync(Api.Operations, new JsonObject
        {
            ["device_id"] = world.CodeB,
            ["operation_type"] = "maintenance",
            ["operational_status"] = "maintenance",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.NotEmpty(problem.Messages("device_id"));
        await AssertStateAsync(admin, before, world.OperationIdB, world.DeviceIdB, world.CodeB);
        var operations = await admin.GetJsonAsync($"{Api.Operations}?device_id={Uri.EscapeDataString(world.CodeB)}");
        Assert.Equal(1, operations["count"]!.GetValue<int>());
    }

    // ---- Tokens API -------------------------------------------------------------------------

    [Fact]
    public async Task CreatedTokenShowsItsSecretOnceAndTheListNeverDoes()
    {
        using var admin = factory.Admin();
        var user = Email("listed");
        var created = await CreateTokenAsync(admin, TokenBody(user, "devices:read", "operations:read"));
        var secret = created["token"]!.GetValue<string>();
        Assert.False(string.IsNullOrEmpty(secret));
        Assert.Equal(user, created["user"]!.GetValue<string>());
        Assert.Equal(["devices:read", "operations:read"], created["scopes"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.NotNull(created["id"]);
        Assert.NotNull(created["created_at"]);

        var response = await admin.GetAsync($"{Api.Tokens}?limit=1000");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain(DeviceOpsFactory.BootstrapSecret, text, StringComparison.Ordinal);
        var results = JsonNode.Parse(text)!["results"]!.AsArray();
        Assert.Contains(results, t => t!["user"]!.GetValue<string>() == user);
        Assert.All(results, t => Assert.False(t!.AsObject().ContainsKey("token"), $"a listed token has a secret: {t}"));
    }

    /// <summary>A bad token request ("{user}" stands for a fresh valid e-mail) and the key its message must be under.</summary>
    public static TheoryData<string, string> BadTokenRequests => new()
    {
        { """{"user": "{user}", "scopes": ["devices:fly"]}""", "scopes" },
        { """{"user": "{user}", "scopes": []}""", "scopes" },
        { """{"user": "{user}", "scopes": "admin"}""", "scopes" },
        { """{"user": "{user}"}""", "scopes" },
        { """{"user": "not-an-email", "scopes": ["devices:read"]}""", "user" },
        { """{"scopes": ["devices:read"]}""", "user" },
        { """{"user": "{user}", "scopes": ["devices:read"], "expires_at": "2020-01-01T00:00:00Z"}""", "expires_at" },
        { """{"user": "{user}", "scopes": ["devices:read"], "expires_at": "2030-01-01T00:00:00"}""", "expires_at" },
        { """{"user": "{user}", "scopes": ["devices:read"], "organizations": ["No Such Organization 9c1e"]}""", "organizations" },
        { """{"user": "{user}", "scopes": ["devices:read"], "rate_limit_per_minute": 0}""", "rate_limit_per_minute" },
        { """{"user": "{user}", "scopes": ["devices:read"], "secret": "x"}""", "secret" },
    };

    [Theory]
    [MemberData(nameof(BadTokenRequests))]
    public async Task BadTokenRequestReturns400NamingTheFieldAndCreatesNoToken(string json, string field)
    {
        using var admin = factory.Admin();
        var user = Email("bad");

        var response = await admin.PostAsync(Api.Tokens, Api.Json(json.Replace("{user}", user, StringComparison.Ordinal)));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.NotEmpty(problem.Messages(field));
        var made = await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}");
        Assert.Equal(0, made["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task TokenRequestCannotChooseItsOwnSecret()
    {
        using var admin = factory.Admin();
        const string chosen = "dop_my-own-easy-to-guess-secret-123456";
        var body = TokenBody(Email("chooser"), "devices:read");
        body["token"] = chosen;

        var created = await CreateTokenAsync(admin, body);

        Assert.NotEqual(chosen, created["token"]!.GetValue<string>());
        using var client = factory.WithToken(chosen);
        await (await client.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
    }

    [Fact]
    public async Task TokenSecretIsStoredOnlyAsAHash()
    {
        using var admin = factory.Admin();
        var created = await CreateTokenAsync(admin, TokenBody(Email("hashed"), "devices:read"));
        var secret = created["token"]!.GetValue<string>();
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

        var stored = await StoredValuesAsync("tokens");

        Assert.DoesNotContain(stored, value => value.Contains(secret, StringComparison.Ordinal));
        Assert.DoesNotContain(stored, value => value.Contains(DeviceOpsFactory.BootstrapSecret, StringComparison.Ordinal));
        Assert.Contains(hash, stored);
    }

    /// <summary>
    /// A token created with an Idempotency-Key: the stored answer that replays it keeps no
    /// secret either, so a replay answers the token without it (shown once, stored only as a
    /// hash) and mints no second token.
    /// </summary>
    [Fact]
    public async Task ATokenCreatedWithAnIdempotencyKeyLeavesItsSecretNowhereAndAReplayAnswersWithoutIt()
    {
        using var admin = factory.Admin();
        var body = TokenBody(Email("retried"), "devices:read");
        var key = Guid.NewGuid().ToString("N");
        Task<HttpResponseMessage> SendAsync()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, Api.Tokens) { Content = Api.Json(body) };
            request.Headers.Add("Idempotency-Key", key);
            return admin.SendAsync(request);
        }
        var first = await SendAsync();
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var created = await first.BodyAsync();
        var secret = created["token"]!.GetValue<string>();
        var count = (await admin.GetJsonAsync(Api.Tokens))["count"]!.GetValue<int>();

        var replay = await SendAsync();

        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        var replayed = await replay.BodyAsync();
        Assert.Equal(created["id"]!.GetValue<int>(), replayed["id"]!.GetValue<int>());
        Assert.Null(replayed["token"]);
        Assert.Equal(count, (await admin.GetJsonAsync(Api.Tokens))["count"]!.GetValue<int>());
        Assert.DoesNotContain(await StoredValuesAsync("idempotency_records"), value => value.Contains(secret, StringComparison.Ordinal));
        Assert.DoesNotContain(await StoredValuesAsync("tokens"), value => value.Contains(secret, StringComparison.Ordinal));
    }

    /// <summary>Every value of every row of a table, as text, read from the store directly.</summary>
    private async Task<List<string>> StoredValuesAsync(string table)
    {
        var stored = new List<string>();
        await using DbConnection connection = DeviceOpsFactory.OnPostgres
            ? new NpgsqlConnection(factory.ConnectionString)
            : new SqliteConnection(factory.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT * FROM {table}";
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            for (var i = 0; i < reader.FieldCount; i++)
            {
                var value = reader.GetValue(i);
                stored.Add(value is byte[] bytes ? Encoding.UTF8.GetString(bytes)
                    : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
            }
        }
        return stored;
    }

    // ---- Identity and request ids -----------------------------------------------------------

    [Fact]
    public async Task UpdatedByAndPerformedByAreTheTokensUser()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var user = Email("alice");
        using var client = await factory.ClientAsync(user, AllButAdmin);

        var response = await client.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject
        {
            ["location"] = "Building C - Floor 1",
            ["status"] = "completed",
            ["updated_by"] = "mallory@example.com",
        });

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var body = await response.BodyAsync();
        Assert.Equal(user, body["updated_by"]!.GetValue<string>());
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var entries = (await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>()))
            .Where(e => e!["request_id"]!.GetValue<string>() == requestId).ToList();
        Assert.Equal(["operation_status_change", "relocation"], entries.Select(e => e!["action"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.All(entries, e => Assert.Equal(user, e!["performed_by"]!.GetValue<string>()));
        var stored = await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/");
        Assert.Equal(user, stored["updated_by"]!.GetValue<string>());
        var byUser = await admin.GetJsonAsync($"{Api.Log}?performed_by={Uri.EscapeDataString(user)}");
        Assert.Equal(entries.Count, byUser["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task CallersRequestIdIsEchoedAndWrittenIntoHistoryAndProblems()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var requestId = Seeder.Unique("client-req");
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{operation["id"]}/")
        {
            Content = Api.Json(new JsonObject { ["location"] = "Building D" }),
        };
        request.Headers.Add("X-Request-Id", requestId);

        var response = await admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(requestId, response.Headers.GetValues("X-Request-Id").Single());
        var entry = Assert.Single(await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>()),
            e => e!["request_id"]!.GetValue<string>() == requestId);
        Assert.Equal("relocation", entry!["action"]!.GetValue<string>());

        var problemId = Seeder.Unique("client-req");
        using var bad = new HttpRequestMessage(HttpMethod.Get, $"{Api.Operations}987654321/");
        bad.Headers.Add("X-Request-Id", problemId);
        var notFound = await admin.SendAsync(bad);
        var problem = await notFound.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Equal(problemId, problem["request_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task RequestIdIsGeneratedWhenTheCallerSendsNone()
    {
        using var anonymous = factory.Anonymous();
        using var admin = factory.Admin();

        var first = await anonymous.GetAsync(Api.Devices);
        var second = await anonymous.GetAsync(Api.Devices);
        var ok = await admin.GetAsync($"{Api.Devices}?limit=1");

        var problem = await first.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        var id = first.Headers.GetValues("X-Request-Id").Single();
        Assert.False(string.IsNullOrWhiteSpace(id));
        Assert.Equal(id, problem["request_id"]!.GetValue<string>());
        Assert.NotEqual(id, second.Headers.GetValues("X-Request-Id").Single());
        Assert.False(string.IsNullOrWhiteSpace(ok.Headers.GetValues("X-Request-Id").Single()));
    }

    [Fact]
    public async Task UnsafeRequestIdIsReplacedNotEchoed()
    {
        using var admin = factory.Admin();
        using var request = new HttpRequestMessage(HttpMethod.Get, Api.Devices);
        request.Headers.TryAddWithoutValidation("X-Request-Id", "abc<script>alert(1)</script>");

        var response = await admin.SendAsync(request);

        var id = response.Headers.GetValues("X-Request-Id").Single();
        Assert.DoesNotContain("<", id, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(id));
    }

    // ---- Overrides of forbidden transitions -------------------------------------------------

    [Fact]
    public async Task ForbiddenOperationTransitionWithJustificationAndOverrideScopeIsAppliedAndRecorded()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operation = await Seeder.OperationAsync(admin, code, "completed");
        var user = Email("supervisor");
        using var client = await factory.ClientAsync(user, [.. AllButAdmin, "operations:override"]);

        var response = await client.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject
        {
            ["status"] = "in_progress",
            ["justification"] = "Fault recurred within the hour; reopening INC-4711",
        });

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("in_progress", (await response.BodyAsync())["status"]!.GetValue<string>());
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var entry = Assert.Single(await Seeder.HistoryAsync(admin, code), e => e!["request_id"]!.GetValue<string>() == requestId)!;
        Assert.Equal("operation_status_change", entry["action"]!.GetValue<string>());
        Assert.Equal("completed", entry["from_status"]!.GetValue<string>());
        Assert.Equal("in_progress", entry["to_status"]!.GetValue<string>());
        Assert.Equal("Fault recurred within the hour; reopening INC-4711", entry["justification"]!.GetValue<string>());
        Assert.Equal(user, entry["performed_by"]!.GetValue<string>());
        Assert.Equal("in_progress", (await admin.GetJsonAsync($"{Api.Operations}{operation["id"]}/"))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task ForbiddenOperationTransitionWithoutOverrideScopeReturns409AndChangesNothing()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operation = await Seeder.OperationAsync(admin, code, "completed");
        var (operationId, deviceId) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = await factory.ClientAsync(Email("operator"), AllButAdmin);

        var response = await client.PatchJsonAsync($"{Api.Operations}{operationId}/", new JsonObject
        {
            ["status"] = "in_progress",
            ["justification"] = "Fault recurred",
            ["location"] = "Building E",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Empty(problem["allowed_next_states"]!.AsArray());
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Fact]
    public async Task BackwardOperationTransitionReturns409ListingAllowedNextStates()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var (operationId, deviceId) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = await factory.ClientAsync(Email("operator"), AllButAdmin);

        var response = await client.PutJsonAsync($"{Api.Operations}{operationId}/", new JsonObject
        {
            ["device_id"] = code,
            ["operation_type"] = "maintenance",
            ["status"] = "pending",
            ["operator_id"] = "OP-456",
            ["description"] = "Routine maintenance check",
            ["operational_status"] = "maintenance",
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(["cancelled", "completed", "failed"],
            problem["allowed_next_states"]!.AsArray().Select(s => s!.GetValue<string>()).Order(StringComparer.Ordinal));
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public async Task OverrideScopeWithoutJustificationStillReturns409(string? justification)
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operation = await Seeder.OperationAsync(admin, code, "cancelled");
        var (operationId, deviceId) = (operation["id"]!.GetValue<int>(), device["id"]!.GetValue<int>());
        var before = await StateAsync(admin, operationId, deviceId, code);
        using var client = await factory.ClientAsync(Email("supervisor"), [.. AllButAdmin, "operations:override"]);
        var body = new JsonObject { ["status"] = "in_progress" };
        if (justification is not null)
        {
            body["justification"] = justification;
        }

        var response = await client.PatchJsonAsync($"{Api.Operations}{operationId}/", body);

        await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        await AssertStateAsync(admin, before, operationId, deviceId, code);
    }

    [Fact]
    public async Task ForbiddenDeviceTransitionWithJustificationAndOverrideScopeIsApplied()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin, status: "decommissioned");
        var code = device["device_id"]!.GetValue<string>();
        using var client = await factory.ClientAsync(Email("supervisor"), [.. AllButAdmin, "operations:override"]);
        using var plain = await factory.ClientAsync(Email("operator"), AllButAdmin);
        var url = $"{Api.Devices}{device["id"]}/";
        var historyBefore = (await Seeder.HistoryAsync(admin, code)).Count;

        var refused = await plain.PatchJsonAsync(url, new JsonObject { ["operational_status"] = "active", ["justification"] = "Back from RMA" });
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(historyBefore, (await Seeder.HistoryAsync(admin, code)).Count);

        var response = await client.PatchJsonAsync(url, new JsonObject { ["operational_status"] = "active", ["justification"] = "Back from RMA" });

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var entry = (await Seeder.HistoryAsync(admin, code))[0]!;
        Assert.Equal("status_change", entry["action"]!.GetValue<string>());
        Assert.Equal("decommissioned", entry["from_status"]!.GetValue<string>());
        Assert.Equal("active", entry["to_status"]!.GetValue<string>());
        Assert.Equal("Back from RMA", entry["justification"]!.GetValue<string>());
    }
}

/// <summary>Token expiry moves the server's clock, so these tests have a server of their own.</summary>
public sealed class ExpiredTokenAuthTests : OwnServerTests
{
    [Fact]
    public async Task TokenPastItsExpiryReturns401InvalidToken()
    {
        var expiresAt = Factory.Clock.GetUtcNow().AddHours(1);
        using var client = await Factory.ClientAsync("expiring@example.com", ["devices:read"], expiresAt: expiresAt);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Api.Devices)).StatusCode);

        Factory.Clock.Advance(TimeSpan.FromHours(2));
        var response = await client.GetAsync(Api.Devices);

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        var challenge = response.Headers.NonValidated.TryGetValues("WWW-Authenticate", out var values) ? string.Join(", ", values) : "";
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        Assert.Contains("error=\"invalid_token\"", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenIsRefusedAtTheExactMomentItExpires()
    {
        var expiresAt = Factory.Clock.GetUtcNow().AddMinutes(30);
        using var client = await Factory.ClientAsync("edge@example.com", ["devices:read"], expiresAt: expiresAt);

        Factory.Clock.Advance(TimeSpan.FromMinutes(30) - TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Api.Devices)).StatusCode);
        Factory.Clock.Advance(TimeSpan.FromSeconds(1));

        await (await client.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
    }
}

/// <summary>
/// Two servers on one store, as two instances of a deployment: each caches the tokens it has
/// seen, and a revocation through either must still hold at once on both.
/// </summary>
public sealed class TwoInstanceTokenTests : OwnServerTests
{
    [Fact]
    public async Task TokenRevokedThroughOneInstanceIsRefusedAtOnceByTheOther()
    {
        await using var other = new DeviceOpsFactory { SharesStoreWith = Factory };
        await other.InitializeAsync();
        using var adminOnA = Factory.Admin();
        var response = await adminOnA.PostJsonAsync(Api.Tokens, new JsonObject
        {
            ["user"] = "two-instances@example.com",
            ["scopes"] = new JsonArray("devices:read"),
        });
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var created = await response.BodyAsync();
        using var onA = Factory.WithToken(created["token"]!.GetValue<string>());
        using var onB = other.WithToken(created["token"]!.GetValue<string>());
        // Both instances have seen, and so cached, the token.
        Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync(Api.Devices)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync(Api.Devices)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync(Api.Devices)).StatusCode);

        var revoke = await adminOnA.DeleteAsync($"{Api.Tokens}{created["id"]!.GetValue<int>()}/");
        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);

        await (await onB.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        await (await onA.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
    }

    /// <summary>
    /// The operation endpoints check a cached token in their own work rather than in a read of its
    /// own (on PostgreSQL in their first round trip, on SQLite in a change's write): a token
    /// revoked through another instance is refused there
    /// too, on every path — a read, a change, a body refused before any statement, an operation
    /// that does not exist — and the change leaves nothing. (A refusal drops the token from the
    /// cache, so each path has a token of its own, cached before the revocation.)
    /// </summary>
    [Fact]
    public async Task TokenRevokedThroughOneInstanceIsRefusedByTheOthersOperationEndpointsAndChangesNothing()
    {
        await using var other = new DeviceOpsFactory { SharesStoreWith = Factory };
        await other.InitializeAsync();
        using var adminOnA = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(adminOnA);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]}/";
        var putBody = JsonNode.Parse(Api.SeedRequest)!;
        putBody["device_id"] = code;
        Func<HttpClient, Task<HttpResponseMessage>>[] paths =
        [
            client => client.GetAsync(url),
            client => client.GetAsync($"{Api.Operations}2000000000/"),
            client => client.PatchJsonAsync(url, new JsonObject { ["location"] = "After" }),
            client => client.PutJsonAsync(url, putBody),
            client => client.PatchJsonAsync(url, new JsonObject { ["status"] = 5 }),
            client => client.PatchAsync(url, new StringContent("{not json", Encoding.UTF8, "application/json")),
        ];
        var users = new List<string>();
        var clients = new List<HttpClient>();
        foreach (var _ in paths)
        {
            users.Add($"{Seeder.Unique("hot")}@example.com");
            clients.Add(other.WithToken(await Factory.TokenAsync(users[^1], ["operations:read", "operations:write"])));
            Assert.Equal(HttpStatusCode.OK, (await clients[^1].GetAsync(url)).StatusCode);   // cached on the other instance
        }
        var log = await Seeder.HistoryAsync(adminOnA, code);
        var before = await adminOnA.GetJsonAsync(url);

        foreach (var user in users)
        {
            var id = (await adminOnA.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}"))["results"]![0]!["id"]!.GetValue<int>();
            Assert.Equal(HttpStatusCode.NoContent, (await adminOnA.DeleteAsync($"{Api.Tokens}{id}/")).StatusCode);
        }
        for (var i = 0; i < paths.Length; i++)
        {
            var response = await paths[i](clients[i]);
            await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
            Assert.Contains("The token has been revoked.", string.Join(", ", response.Headers.NonValidated["WWW-Authenticate"]), StringComparison.Ordinal);
            clients[i].Dispose();
        }
        Assert.Equal(before.ToJsonString(), (await adminOnA.GetJsonAsync(url)).ToJsonString());
        Assert.Equal(log.ToJsonString(), (await Seeder.HistoryAsync(adminOnA, code)).ToJsonString());
    }
}
