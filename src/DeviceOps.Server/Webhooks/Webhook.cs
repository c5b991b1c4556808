using DeviceOps.Events;
using DeviceOps.Http;

namespace DeviceOps.Webhooks;

/// <summary>
/// A receiver of change events: a URL, the secret its deliveries are signed with, and which
/// events it wants. Its scan cursor is how far the dispatcher has fanned the outbox out to it.
/// </summary>
public sealed class Webhook
{
    public const string AllEvents = "*";

    private Webhook()
    {
    }

    public int Id { get; private set; }
    public string Url { get; private set; } = "";

    /// <summary>
    /// Kept as given, unlike token secrets: signing needs the secret itself, not a hash of it.
    /// No response ever carries it.
    /// </summary>
    public string Secret { get; private set; } = "";

    /// <summary>Space-separated event types, or <c>*</c> for every type.</summary>
    public string EventTypes { get; private set; } = AllEvents;

    /// <summary>Comma-separated organization ids the webhook is limited to; empty means all.</summary>
    public string OrganizationIds { get; private set; } = "";

    public bool Active { get; private set; } = true;
    public string? Description { get; private set; }
    public DateTime CreatedAt { get; private set; }
    public string CreatedBy { get; private set; } = "";
    public DateTime UpdatedAt { get; private set; }

    /// <summary>The outbox position after which events are still to be fanned out to this webhook.</summary>
    public long CursorTx { get; private set; }

    public long CursorId { get; private set; }

    public IReadOnlyList<string> EventTypeList => EventTypes.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    public IReadOnlyList<int> OrganizationIdList =>
        [.. OrganizationIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];

    public EventCursor Cursor => new(CursorTx, CursorId);

    /// <summary>
    /// A new webhook; <paramref name="start"/> is the end of the feed now, so it receives the
    /// events committed after its creation and none from before.
    /// </summary>
    public static Webhook Create(string url, string secret, IEnumerable<string> eventTypes, IEnumerable<int> organizationIds,
        bool active, string? description, string createdBy, DateTime now, EventCursor start)
    {
        var webhook = new Webhook { CreatedAt = now, CreatedBy = createdBy, CursorTx = start.Tx, CursorId = start.Id };
        webhook.Update(url, secret, eventTypes, organizationIds, active, description, now);
        return webhook;
    }

    /// <summary>Changes what is given (null: keep). Turning a webhook off and on does not replay what it missed.</summary>
    /// <summary>How long the stored list of organization ids may be (the column's size).</summary>
    public const int MaxOrganizationIdsLength = 2000;

    /// <summary>The organization ids as they are stored: distinct, in order, comma-separated.</summary>
    public static string StoredOrganizationIds(IEnumerable<int> organizationIds) => string.Join(',', organizationIds.Distinct().Order());

    public void Update(string? url, string? secret, IEnumerable<string>? eventTypes, IEnumerable<int>? organizationIds,
        bool? active, Optional<string?> description, DateTime now)
    {
        Url = url ?? Url;
        Secret = secret ?? Secret;
        if (eventTypes is not null)
        {
            var types = eventTypes.Distinct().ToList();
            EventTypes = types.Contains(AllEvents) ? AllEvents : string.Join(' ', types);
        }
        if (organizationIds is not null)
        {
            OrganizationIds = StoredOrganizationIds(organizationIds);
        }
        Active = active ?? Active;
        if (description.IsSet)
        {
            Description = description.Value;
        }
        UpdatedAt = now;
    }

    /// <summary>Records that the outbox has been fanned out to this webhook up to <paramref name="cursor"/>.</summary>
    public void Advance(EventCursor cursor)
    {
        CursorTx = cursor.Tx;
        CursorId = cursor.Id;
    }

    /// <summary>Whether an event is for this webhook: one of its types, in one of its organizations.</summary>
    public bool Wants(OutboxEvent e) =>
        (EventTypes == AllEvents || EventTypeList.Contains(e.Type))
        && (OrganizationIds.Length == 0 || OrganizationIdList.Contains(e.OrganizationId));
}
