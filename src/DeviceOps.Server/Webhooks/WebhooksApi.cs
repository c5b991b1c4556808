using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using DeviceOps.Organizations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Webhooks;

public sealed record WebhookResponse(
    int Id,
    string Url,
    IReadOnlyList<string> Events,
    IReadOnlyList<string> Organizations,
    bool Active,
    string? Description,
    DateTime CreatedAt,
    string CreatedBy,
    DateTime UpdatedAt);

/// <summary>The body of POST and PATCH /api/v1/webhook/, as the OpenAPI document shows it.</summary>
public sealed record WebhookRequest(
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("secret")] string Secret,
    [property: JsonPropertyName("events")] string[] Events,
    [property: JsonPropertyName("organizations")] object[]? Organizations,
    [property: JsonPropertyName("active")] bool? Active,
    [property: JsonPropertyName("description")] string? Description);

public sealed record DeliveryResponse(
    long Id,
    Guid EventId,
    string EventType,
    string DeviceId,
    string Status,
    int Attempts,
    int? LastStatusCode,
    string? LastError,
    DateTime? LastAttemptAt,
    DateTime? NextAttemptAt,
    DateTime? DeliveredAt);

/// <summary>
/// Webhooks, managed by an unlimited admin: where to send which events, and the log of what was
/// sent. The dispatcher (<see cref="WebhookDispatcher"/>) does the sending.
/// </summary>
public static class WebhooksApi
{
    public const string Path = "/api/v1/webhook";
    public const int MinSecretLength = 16;
    public const int MaxSecretLength = 200;
    private static readonly HashSet<string> Writable = ["url", "secret", "events", "organizations", "active", "description"];
    private static readonly HashSet<string> ReadOnly = ["id", "created_at", "created_by", "updated_at"];

    public static RouteGroupBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Webhooks").RequireScope(Scopes.Admin).RequireAuthorization(AuthExtensions.UnlimitedAdmin);
        group.MapGet("/", List).WithFields<WebhookResponse>().WithSummary("List webhooks (never their secrets)");
        group.MapGet("/{id:int}/", Get).WithSummary("One webhook (never its secret)");
        group.MapPost("/", Create).Accepts<WebhookRequest>("application/json")
            .WithSummary("Register a webhook; it receives the events committed from now on");
        group.MapPatch("/{id:int}/", Patch).Accepts<WebhookRequest>("application/json")
            .WithSummary("Change some of a webhook's fields (a new secret signs the next attempts)");
        group.MapDelete("/{id:int}/", Delete).WithSummary("Remove a webhook; its pending deliveries stop");
        group.MapGet("/{id:int}/deliveries/", Deliveries).WithFields<DeliveryResponse>()
            .WithSummary("The webhook's deliveries, newest first")
            .WithDescription("Filter: `status` (pending, delivered, dead).");
        group.MapPost("/{id:int}/deliveries/{deliveryId:long}/redeliver", Redeliver)
            .WithSummary("Send a delivery again: back to pending, attempts reset");
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<Page<WebhookResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = list.Order(db.Webhooks.AsNoTracking(), WebhookOrderings, "id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        var names = await OrganizationNamesAsync(db, cancellationToken);
        return TypedResults.Ok(await list.PageAsync(query, w => w.ToResponse(names), cancellationToken));
    }

    public static async Task<Results<Ok<WebhookResponse>, NotFoundProblem>> Get(int id, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var webhook = await db.Webhooks.AsNoTracking().FirstOrDefaultAsync(w => w.Id == id, cancellationToken);
        return webhook is null
            ? Problems.NotFoundResult($"Webhook {id}")
            : TypedResults.Ok(webhook.ToResponse(await OrganizationNamesAsync(db, cancellationToken)));
    }

    public static async Task<Results<Created<WebhookResponse>, BodyProblem, ValidationFailed>> Create(
        HttpContext http, DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var fields = await ReadAsync(body, db, creating: true, cancellationToken);
        if (fields.Errors.Any)
        {
            return Problems.Validation(fields.Errors.ToDictionary());
        }

        var now = Rfc3339.Now(clock);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        // Taken inside the transaction that inserts the webhook: on SQLite it holds the write
        // lock, so no event can commit between reading the end and creating the webhook.
        var start = await EventReader.EndAsync(db, cancellationToken);
        var webhook = Webhook.Create(fields.Url!, fields.Secret!, fields.Events!, fields.OrganizationIds ?? [], fields.Active ?? true,
            fields.Description.Or(null), http.Caller().Email, now, start);
        db.Webhooks.Add(webhook);
        await db.SaveChangesAsync(cancellationToken);
        var response = webhook.ToResponse(await OrganizationNamesAsync(db, cancellationToken));
        var location = $"{Path}/{webhook.Id}/";
        await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, response, location, clock, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.Created(location, response);
    }

    public static async Task<Results<Ok<WebhookResponse>, NotFoundProblem, BodyProblem, ValidationFailed>> Patch(
        int id, HttpContext http, DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var fields = await ReadAsync(body, db, creating: false, cancellationToken);
        if (fields.Errors.Any)
        {
            return Problems.Validation(fields.Errors.ToDictionary());
        }
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var webhook = await db.Webhooks.FirstOrDefaultAsync(w => w.Id == id, cancellationToken);
        if (webhook is null)
        {
            return Problems.NotFoundResult($"Webhook {id}");
        }
        webhook.Update(fields.Url, fields.Secret, fields.Events, fields.OrganizationIds, fields.Active, fields.Description, Rfc3339.Now(clock));
        if (!await SavedAsync(db, cancellationToken))
        {
            return Problems.NotFoundResult($"Webhook {id}");
        }
        var response = webhook.ToResponse(await OrganizationNamesAsync(db, cancellationToken));
        await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status200OK, response, null, clock, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.Ok(response);
    }

    public static async Task<Results<NoContent, NotFoundProblem>> Delete(int id, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        // The deliveries go with it (cascade): nothing pending is sent any more.
        var deleted = await db.Webhooks.Where(w => w.Id == id).ExecuteDeleteAsync(cancellationToken);
        return deleted == 0 ? Problems.NotFoundResult($"Webhook {id}") : TypedResults.NoContent();
    }

    public static async Task<Results<Ok<Page<DeliveryResponse>>, NotFoundProblem, ValidationFailed>> Deliveries(
        int id, HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = db.Deliveries.AsNoTracking().Where(d => d.WebhookId == id);
        if (list.Choice("status", DeliveryStatus.All) is { } status)
        {
            query = query.Where(d => d.Status == status);
        }
        query = list.Order(query, DeliveryOrderings, "-id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        if (!await db.Webhooks.AnyAsync(w => w.Id == id, cancellationToken))
        {
            return Problems.NotFoundResult($"Webhook {id}");
        }
        return TypedResults.Ok(await list.PageAsync(query, ToResponse, cancellationToken));
    }

    public static async Task<Results<Accepted<DeliveryResponse>, NotFoundProblem>> Redeliver(
        int id, long deliveryId, DeviceOpsDb db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var delivery = await db.Deliveries.FirstOrDefaultAsync(d => d.Id == deliveryId && d.WebhookId == id, cancellationToken);
        if (delivery is null)
        {
            return Problems.NotFoundResult($"Delivery {deliveryId} of webhook {id}");
        }
        delivery.Redeliver(Rfc3339.Now(clock));
        if (!await SavedAsync(db, cancellationToken))
        {
            return Problems.NotFoundResult($"Delivery {deliveryId} of webhook {id}");
        }
        return TypedResults.Accepted($"{Path}/{id}/deliveries/?status=pending", ToResponse(delivery));
    }

    /// <summary>
    /// Saves a change to a row read a moment ago; false when the row was deleted meanwhile (a
    /// webhook's DELETE, with its deliveries): the update found nothing, which is a 404.
    /// </summary>
    private static async Task<bool> SavedAsync(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateConcurrencyException)
        {
            return false;
        }
    }

    public static WebhookResponse ToResponse(this Webhook webhook, IReadOnlyDictionary<int, string> organizationNames) =>
        new(webhook.Id, webhook.Url, webhook.EventTypeList,
            [.. webhook.OrganizationIdList.Select(id => organizationNames.TryGetValue(id, out var name) ? name : id.ToString(CultureInfo.InvariantCulture))],
            webhook.Active, webhook.Description, webhook.CreatedAt, webhook.CreatedBy, webhook.UpdatedAt);

    public static DeliveryResponse ToResponse(WebhookDelivery d) =>
        new(d.Id, d.EventId, d.EventType, d.DeviceCode, d.Status, d.Attempts, d.LastStatusCode, d.LastError, d.LastAttemptAt,
            d.Status == DeliveryStatus.Pending ? d.NextAttemptAt : null, d.DeliveredAt);

    private static Task<Dictionary<int, string>> OrganizationNamesAsync(DeviceOpsDb db, CancellationToken cancellationToken) =>
        db.Organizations.AsNoTracking().ToDictionaryAsync(o => o.Id, o => o.Name, cancellationToken);

    private sealed record Fields(Errors Errors, string? Url, string? Secret, List<string>? Events, List<int>? OrganizationIds,
        bool? Active, Optional<string?> Description);

    /// <summary>Validates a POST (required fields) or PATCH (any of them) body, collecting every problem.</summary>
    private static async Task<Fields> ReadAsync(JsonElement body, DeviceOpsDb db, bool creating, CancellationToken cancellationToken)
    {
        var errors = new Errors();
        var fields = new FieldReader(body, Writable, ReadOnly, errors);
        var url = fields.Text("url", 2000, required: creating, nullable: false, check: CheckUrl).Value;
        var secret = fields.Text("secret", MaxSecretLength, required: creating, nullable: false, check: s => s.Length < MinSecretLength
            ? $"Must be at least {MinSecretLength} characters long."
            : null).Value;
        var events = Strings(fields, "events", required: creating);
        if (events is not null)
        {
            if (events.Count == 0)
            {
                fields.Fail("events", $"Give at least one event type, or \"{Webhook.AllEvents}\" for all.");
            }
            foreach (var unknown in events.Where(t => t != Webhook.AllEvents && !OutboxEvent.Types.Contains(t)))
            {
                fields.Fail("events", $"\"{unknown}\" is not an event type; use \"{Webhook.AllEvents}\" or: {string.Join(", ", OutboxEvent.Types)}.");
            }
        }
        var organizations = Strings(fields, "organizations", required: false, numbersAllowed: true);
        List<int>? organizationIds = null;
        if (organizations is not null)
        {
            organizationIds = [];
            foreach (var given in organizations)
            {
                var organization = Organization.TryParseId(given, out var number)
                    ? await db.Organizations.AsNoTracking().FirstOrDefaultAsync(o => o.Id == number, cancellationToken)
                    : await db.Organizations.AsNoTracking().FirstOrDefaultAsync(o => o.Name == given, cancellationToken);
                if (organization is null)
                {
                    fields.Fail("organizations", $"No organization has the name or id \"{given}\".");
                    continue;
                }
                organizationIds.Add(organization.Id);
            }
            if (Webhook.StoredOrganizationIds(organizationIds).Length > Webhook.MaxOrganizationIdsLength)
            {
                // PostgreSQL refused the row (a 500) where SQLite kept it.
                fields.Fail("organizations", $"Too many organizations: their ids take over {Webhook.MaxOrganizationIdsLength} characters. " +
                    "Leave the list out to receive every organization's events.");
            }
        }
        bool? active = null;
        if (fields.Element("active", nullable: false) is { IsSet: true } given2)
        {
            if (given2.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                active = given2.Value.GetBoolean();
            }
            else
            {
                fields.Fail("active", "Must be true or false.");
            }
        }
        var description = fields.Text("description", 500);
        return new(errors, url, secret, events, organizationIds, active, description);
    }

    private static string? CheckUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && HasHostToSendTo(uri) && string.IsNullOrEmpty(uri.UserInfo)
            ? null
            : "Must be an absolute http or https URL without credentials, e.g. https://alerts.example.com/deviceops.";

    /// <summary>
    /// The host as a request would name it: Uri accepts some hosts it cannot send to, such as a
    /// bidirectional control character before <c>.com</c> (the host becomes <c>.com</c>).
    /// </summary>
    private static bool HasHostToSendTo(Uri uri)
    {
        try
        {
            return uri.Host.Length > 0 && Uri.CheckHostName(uri.IdnHost) != UriHostNameType.Unknown;
        }
        catch (UriFormatException)
        {
            return false;
        }
    }

    /// <summary>An array of strings (and, for organizations, integer ids); null when absent or null.</summary>
    private static List<string>? Strings(FieldReader fields, string name, bool required, bool numbersAllowed = false)
    {
        var element = fields.Element(name, required, nullable: !required);
        if (!element.IsSet || element.Value.ValueKind == JsonValueKind.Null)
        {
            return element.IsSet && !required ? [] : null;
        }
        if (element.Value.ValueKind != JsonValueKind.Array)
        {
            fields.Fail(name, "Must be an array.");
            return null;
        }
        var items = new List<string>();
        foreach (var item in element.Value.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 and <= 200 } text && !FieldReader.HasNul(text))
            {
                items.Add(text);
            }
            else if (numbersAllowed && item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out var number))
            {
                items.Add(number.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                fields.Fail(name, numbersAllowed ? "Items must be non-empty strings or integers." : "Items must be non-empty strings.");
                return null;
            }
        }
        return items;
    }

    private static readonly Orderings<Webhook, int> WebhookOrderings = new Orderings<Webhook, int>(w => w.Id)
        .By("id", w => w.Id)
        .By("created_at", w => w.CreatedAt);

    /// <summary>Newest first unless asked otherwise.</summary>
    private static readonly Orderings<WebhookDelivery, long> DeliveryOrderings = new Orderings<WebhookDelivery, long>(d => d.Id)
        .By("id", d => d.Id)
        .By("created_at", d => d.CreatedAt);
}
