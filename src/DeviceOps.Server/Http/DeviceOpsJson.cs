using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.Auth;
using DeviceOps.Devices;
using DeviceOps.Events;
using DeviceOps.History;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using DeviceOps.Webhooks;

namespace DeviceOps.Http;

public sealed record HealthResponse(string Status);

/// <summary>Source-generated serialization of every response: no reflection on the hot path.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.Strict, Converters = [typeof(Rfc3339Converter)])]
[JsonSerializable(typeof(OperationResponse))]
[JsonSerializable(typeof(Page<OperationResponse>))]
[JsonSerializable(typeof(DeviceResponse))]
[JsonSerializable(typeof(Page<DeviceResponse>))]
[JsonSerializable(typeof(HistoryEntryResponse))]
[JsonSerializable(typeof(Page<HistoryEntryResponse>))]
[JsonSerializable(typeof(OrganizationResponse))]
[JsonSerializable(typeof(Page<OrganizationResponse>))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(Page<TokenResponse>))]
[JsonSerializable(typeof(WebhookResponse))]
[JsonSerializable(typeof(Page<WebhookResponse>))]
[JsonSerializable(typeof(DeliveryResponse))]
[JsonSerializable(typeof(Page<DeliveryResponse>))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(DeviceSummary))]
[JsonSerializable(typeof(TransitionsResponse))]
[JsonSerializable(typeof(EventPage))]
[JsonSerializable(typeof(EventResponse))]
[JsonSerializable(typeof(BatchResponse<OperationResponse>))]
[JsonSerializable(typeof(BatchResponse<DeviceResponse>))]
[JsonSerializable(typeof(List<FailedItem>))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonObject))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
public sealed partial class DeviceOpsJson : JsonSerializerContext
{
}

public static class JsonSetup
{
    public static IServiceCollection AddDeviceOpsJson(this IServiceCollection services) =>
        services.ConfigureHttpJsonOptions(options =>
        {
            options.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            // Numbers are numbers: the web default of reading them from strings would also make
            // the OpenAPI document claim every integer may be a string.
            options.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            options.SerializerOptions.Converters.Add(new Rfc3339Converter());
            options.SerializerOptions.TypeInfoResolverChain.Insert(0, DeviceOpsJson.Default);
        });
}
