using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace DeviceOps.Tests.Infrastructure;

/// <summary>Small helpers that keep tests about behaviour, not plumbing.</summary>
public static class Api
{
    public const string Operations = "/api/v1/inventory_device_operation/";
    public const string Devices = "/api/v1/inventory_device/";
    public const string Log = "/api/v1/inventory_device_log/";
    public const string Organizations = "/api/v1/organization/";
    public const string Tokens = "/api/v1/token/";

    public static readonly string SeedRequest = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed", "example-request.json"));
    public static readonly string SeedResponse = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed", "example-response.json"));

    /// <summary>The URL of an operation, from its answer.</summary>
    public static string OperationUrl(JsonObject operation) => $"{Operations}{operation["id"]}/";

    /// <summary>The URL of a device, from its answer.</summary>
    public static string DeviceUrl(JsonObject device) => $"{Devices}{device["id"]}/";

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static StringContent Json(JsonNode node) => Json(node.ToJsonString());

    public static async Task<JsonObject> BodyAsync(this HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())!;

    public static async Task<JsonObject> GetJsonAsync(this HttpClient client, string url)
    {
        var response = await client.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.BodyAsync();
    }

    public static Task<HttpResponseMessage> PutJsonAsync(this HttpClient client, string url, JsonNode body) =>
        client.PutAsync(url, Json(body));

    public static Task<HttpResponseMessage> PatchJsonAsync(this HttpClient client, string url, JsonNode body) =>
        client.PatchAsync(url, Json(body));

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string url, JsonNode body) =>
        client.PostAsync(url, Json(body));

    /// <summary>Asserts an RFC 9457 problem with its code and request id, and returns its body.</summary>
    public static async Task<JsonObject> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        Assert.Equal((int)status, problem["status"]!.GetValue<int>());
        Assert.Equal(code, problem["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(problem["title"]?.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(problem["type"]?.GetValue<string>()), $"no type: {text}");
        Assert.Equal(response.Headers.GetValues("X-Request-Id").Single(), problem["request_id"]!.GetValue<string>());
        return problem;
    }

    public static string[] Messages(this JsonObject problem, string field) =>
        [.. problem["errors"]![field]!.AsArray().Select(m => m!.GetValue<string>())];
}
