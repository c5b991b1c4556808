using DeviceOps.Events;

namespace DeviceOps.Webhooks;

public static class DeliveryStatus
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";

    /// <summary>Given up after the last attempt; no longer holds back the device's later events.</summary>
    public const string Dead = "dead";

    public static readonly string[] All = [Pending, Delivered, Dead];
}

/// <summary>
/// One event to send to one webhook, and how that went. The row refers to its outbox event,
/// which the janitor keeps as long as the row exists, so a redelivery can always rebuild the body.
/// </summary>
public sealed class WebhookDelivery
{
    private WebhookDelivery()
    {
    }

    public long Id { get; private set; }
    public int WebhookId { get; private set; }
    public Webhook Webhook { get; private set; } = null!;
    public long OutboxEventId { get; private set; }
    public OutboxEvent OutboxEvent { get; private set; } = null!;

    // Copied from the event: the ordering key (webhook, device) and the log's columns.
    public Guid EventId { get; private set; }
    public string EventType { get; private set; } = "";
    public int DeviceId { get; private set; }
    public string DeviceCode { get; private set; } = "";

    public string Status { get; private set; } = DeliveryStatus.Pending;
    public int Attempts { get; private set; }
    public int? LastStatusCode { get; private set; }
    public string? LastError { get; private set; }
    public DateTime? LastAttemptAt { get; private set; }
    public DateTime NextAttemptAt { get; private set; }
    public DateTime? DeliveredAt { get; private set; }
    public DateTime CreatedAt { get; private set; }

    /// <summary>While set and in the future, one dispatcher is sending this delivery and no other may.</summary>
    public DateTime? LeaseUntil { get; private set; }

    public string? LeaseOwner { get; private set; }

    public static readonly string[] Columns =
        ["webhook_id", "outbox_event_id", "event_id", "event_type", "device_id", "device_code", "status", "attempts", "next_attempt_at", "created_at"];

    /// <summary>A new delivery of an event, due now, as a row of <see cref="Columns"/>.</summary>
    public static object?[] Row(int webhookId, OutboxEvent e, DateTime now) =>
        [webhookId, e.Id, e.EventId, e.Type, e.DeviceId, e.DeviceCode,
            DeliveryStatus.Pending, 0, now, now];

    /// <summary>Back to the queue, as if new: a person decided the receiver is ready now.</summary>
    public void Redeliver(DateTime now)
    {
        Status = DeliveryStatus.Pending;
        Attempts = 0;
        NextAttemptAt = now;
        DeliveredAt = null;
        LeaseUntil = null;
        LeaseOwner = null;
    }
}
