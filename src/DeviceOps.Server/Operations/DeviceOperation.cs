using System.Text.Json.Nodes;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;

namespace DeviceOps.Operations;

/// <summary>
/// One operational change or work item on one device. It never moves to another device and is
/// never erased: it ends completed, failed or cancelled.
/// </summary>
public sealed class DeviceOperation
{
    private ChangeContext? _touchedBy;

    private DeviceOperation()
    {
    }

    public int Id { get; private set; }
    public int DeviceId { get; private set; }
    public Device Device { get; private set; } = null!;
    public string OperationType { get; private set; } = "";
    public string Status { get; private set; } = OperationStatus.Pending;
    public string? OperatorId { get; private set; }
    public string? Description { get; private set; }
    public string? Notes { get; private set; }
    public DateTime? StartedAt { get; private set; }
    public DateTime? CompletedAt { get; private set; }
    public DateTime CreatedAt { get; private set; }
    public DateTime UpdatedAt { get; private set; }
    public string CreatedBy { get; private set; } = "";

    /// <summary>Incremented by every change of the operation's own fields; part of its ETag.</summary>
    public int Version { get; private set; }

    /// <summary>An operation as the store holds it, read by a hot path without EF Core.</summary>
    internal static DeviceOperation Restore(int id, Device device, string type, string status, string? operatorId,
        string? description, string? notes, DateTime? startedAt, DateTime? completedAt, DateTime createdAt,
        DateTime updatedAt, string createdBy, int version) => new()
        {
            Id = id,
            DeviceId = device.Id,
            Device = device,
            OperationType = type,
            Status = status,
            OperatorId = operatorId,
            Description = description,
            Notes = notes,
            StartedAt = startedAt,
            CompletedAt = completedAt,
            CreatedAt = createdAt,
            UpdatedAt = updatedAt,
            CreatedBy = createdBy,
            Version = version,
        };

    /// <summary>Opens an operation on a device and writes its <c>operation_created</c> entry.</summary>
    public static DeviceOperation Open(Device device, string type, string status, ChangeContext change)
    {
        var operation = new DeviceOperation
        {
            Device = device,
            OperationType = type,
            Status = status,
            CreatedAt = change.Now,
            UpdatedAt = change.Now,
            CreatedBy = change.Actor,
            Version = 1,
            _touchedBy = change,
        };
        var changes = new JsonObject
        {
            ["operation_type"] = new JsonObject { ["from"] = null, ["to"] = type },
            ["status"] = new JsonObject { ["from"] = null, ["to"] = status },
        };
        change.Entries.Add(HistoryEntry.Create(device, operation, HistoryActions.OperationCreated, changes, change, null, status));
        return operation;
    }

    /// <summary>Sets the operation's descriptive fields; <c>null</c> arguments of an <see cref="Optional{T}"/> left unset keep the value.</summary>
    public void Describe(Optional<string?> type, Optional<string?> operatorId, Optional<string?> description,
        Optional<string?> notes, Optional<DateTime?> startedAt, Optional<DateTime?> completedAt, ChangeContext change)
    {
        var changed = false;
        Set(type.IsSet && type.Value is not null, type.Value!, OperationType, v => OperationType = v, ref changed);
        Set(operatorId.IsSet, operatorId.Value, OperatorId, v => OperatorId = v, ref changed);
        Set(description.IsSet, description.Value, Description, v => Description = v, ref changed);
        Set(notes.IsSet, notes.Value, Notes, v => Notes = v, ref changed);
        Set(startedAt.IsSet, startedAt.Value, StartedAt, v => StartedAt = v, ref changed);
        Set(completedAt.IsSet, completedAt.Value, CompletedAt, v => CompletedAt = v, ref changed);
        if (changed)
        {
            Touch(change);
        }
    }

    /// <summary>
    /// Moves the operation to another status. Any status reachable along the arrows may be set
    /// in one request; a backward or final-state move is refused unless the change may
    /// override it. Reaching <c>completed</c> without a completion time stamps it now, and
    /// reaching <c>in_progress</c> without a start time stamps that. Leaving <c>completed</c> (by
    /// override) reopens the work: its completion time is cleared unless the request gave one.
    /// </summary>
    public void ChangeStatus(string to, ChangeContext change, bool completionGiven = false)
    {
        if (to != Status)
        {
            if (!OperationStatus.CanMove(Status, to) && !change.CanOverride)
            {
                change.Refuse("status", Status, to, OperationStatus.AllowedFrom(Status));
                return;
            }
            change.Entries.Add(HistoryEntry.Create(Device, this, HistoryActions.OperationStatusChange,
                HistoryEntry.Diff("status", Status, to), change, Status, to));
            if (Status == OperationStatus.Completed && !completionGiven)
            {
                CompletedAt = null;
            }
            Status = to;
            Touch(change);
        }
        Stamp(change);
    }

    /// <summary>
    /// An operation in progress has a start time and a completed one has a completion time:
    /// when the request gave none, the server stamps now.
    /// </summary>
    public void Stamp(ChangeContext change)
    {
        if (Status == OperationStatus.InProgress && StartedAt is null)
        {
            StartedAt = change.Now;
            Touch(change);
        }
        if (Status == OperationStatus.Completed && CompletedAt is null)
        {
            CompletedAt = change.Now;
            Touch(change);
        }
    }

    /// <summary>Checks what must hold between fields once every change of a request is made.</summary>
    public void Validate(ChangeContext change)
    {
        if (StartedAt is { } started && CompletedAt is { } completed && completed < started)
        {
            change.Errors.Add("completed_at", "Must not be before started_at.");
        }
    }

    private void Touch(ChangeContext change)
    {
        if (_touchedBy != change)
        {
            _touchedBy = change;
            Version++;
            UpdatedAt = change.Now;
        }
    }

    private static void Set<T>(bool given, T value, T current, Action<T> assign, ref bool changed)
    {
        if (given && !EqualityComparer<T>.Default.Equals(value, current))
        {
            assign(value);
            changed = true;
        }
    }
}
