using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace DeviceOps.Http;

public static class OpenApiSetup
{
    /// <summary>The seed page's example request, shown as the example of the PUT.</summary>
    public const string SeedRequest = """
        {
          "operation_type": "maintenance",
          "operational_status": "maintenance",
          "status": "completed",
          "device_id": "DEV-001",
          "operator_id": "OP-456",
          "description": "Routine maintenance check performed",
          "started_at": "2024-01-15T10:00:00Z",
          "completed_at": "2024-01-15T11:30:00Z",
          "notes": "All systems functioning normally",
          "location": "Building A - Floor 2",
          "assigned_user": "john.doe@company.com",
          "maintenance_notes": "Scheduled firmware update completed",
          "configuration": {
            "network_profile": "production",
            "monitoring_enabled": true,
            "alert_level": "standard"
          },
          "next_maintenance": "2024-04-15T09:00:00Z"
        }
        """;

    private const string BearerScheme = "bearer";

    private static readonly Dictionary<string, string> TagDescriptions = new()
    {
        ["Device operations"] = "Maintenance, relocation, reassignment, configuration and lifecycle operations on a device; the seed's PUT applies one and its effect on the device in one transaction.",
        ["Devices"] = "The inventory: each device's identity, operational status, location, assignment and configuration.",
        ["Events"] = "Every committed change as an event, in order: a resumable pull feed and a live Server-Sent Events stream.",
        ["Health"] = "Liveness, readiness and Prometheus metrics for load balancers and monitoring; no token needed.",
        ["Operational history"] = "The append-only audit trail: one entry per actual change, never edited or deleted.",
        ["Organizations"] = "The tenants a token can be limited to; devices belong to one.",
        ["Tokens"] = "API tokens: scopes, organization limits, expiry, revocation (admin).",
        ["Webhooks"] = "Signed deliveries of change events to your receivers, in order per device, with retries and a delivery log (admin).",
    };

    public static IServiceCollection AddDeviceOpsOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            // Stored JSON (history changes, a configuration) is any JSON value: said inline, not
            // as a component named after our serialization type.
            options.CreateSchemaReferenceId = type => type.Type == typeof(StoredJson) ? null : Microsoft.AspNetCore.OpenApi.OpenApiOptions.CreateDefaultSchemaReferenceId(type);
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "DeviceOps — Inventory Device Operation API",
                    Version = "v1",
                    Description = "Device inventory, operations with status rules, and an append-only operational history. " +
                        "Every /api/v1/ call takes `Authorization: Bearer <token>`; every error is an RFC 9457 problem with a stable `code`.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "A DeviceOps API token (made by `token create` or POST /api/v1/token/).",
                };
                // Routing serves both spellings; the document shows the seed's, with the trailing slash.
                var paths = new OpenApiPaths();
                foreach (var (path, item) in document.Paths)
                {
                    paths[path.StartsWith("/api/", StringComparison.Ordinal) && !path.EndsWith('/') ? path + "/" : path] = item;
                }
                document.Paths = paths;
                // Each tag says what its group is for, in the reference and in generated clients.
                foreach (var tag in document.Tags ?? Enumerable.Empty<OpenApiTag>())
                {
                    tag.Description ??= tag.Name is { } name && TagDescriptions.TryGetValue(name, out var text) ? text : null;
                }
                // The generator writes the request's base address with its slash; paths start with
                // one, so a client joining the two would ask for "//api/v1/…".
                foreach (var server in document.Servers ?? [])
                {
                    server.Url = server.Url?.TrimEnd('/');
                }
                return Task.CompletedTask;
            });
            // Our timestamps are written by a converter, which hides their type from the generator.
            options.AddSchemaTransformer((schema, context, _) =>
            {
                if (context.JsonTypeInfo.Type == typeof(DateTime))
                {
                    schema.Type = JsonSchemaType.String;
                    schema.Format = "date-time";
                }
                else if (context.JsonTypeInfo.Type == typeof(Dictionary<string, object?>))
                {
                    // A configuration: any keys, with string, number, boolean or null values (null
                    // removes a key). Without this the document promised an object with no members.
                    schema.AdditionalProperties = new OpenApiSchema
                    {
                        Type = JsonSchemaType.String | JsonSchemaType.Number | JsonSchemaType.Boolean | JsonSchemaType.Null,
                    };
                }
                else if (context.JsonTypeInfo.Type == typeof(DateTime?))
                {
                    schema.Type = JsonSchemaType.String | JsonSchemaType.Null;
                    schema.Format = "date-time";
                }
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                if (metadata.OfType<IAuthorizeData>().Any() && !metadata.OfType<IAllowAnonymous>().Any())
                {
                    operation.Security ??= [];
                    operation.Security.Add(new OpenApiSecurityRequirement
                    {
                        [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [],
                    });
                }
                else
                {
                    // Say "no token needed" (an empty requirement) rather than nothing, which
                    // readers cannot tell from "forgot to document".
                    operation.Security = [new OpenApiSecurityRequirement()];
                }
                if (context.Description.HttpMethod == "PUT"
                    && context.Description.RelativePath == "api/v1/inventory_device_operation/{id}/"
                    && operation.RequestBody?.Content?.TryGetValue("application/json", out var body) == true)
                {
                    body.Example = JsonNode.Parse(SeedRequest);
                }
                return Task.CompletedTask;
            });
        });

    /// <summary>The document at /openapi/v1.json and a browsable reference at /docs.</summary>
    public static IEndpointRouteBuilder MapDeviceOpsDocs(this IEndpointRouteBuilder app)
    {
        // Only the documents there are: another name is the API's own 404 problem, not the
        // document handler's plain-text one.
        app.MapOpenApi("/openapi/{documentName:regex(^v1$)}.json").AllowAnonymous();
        app.MapScalarApiReference("/docs", options => options
            .WithTitle("DeviceOps API")
            .WithOpenApiRoutePattern("/openapi/{documentName}.json")).AllowAnonymous();
        return app;
    }
}
