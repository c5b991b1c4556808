using DeviceOps.Http;

namespace DeviceOps.History;

/// <summary>A transition the rules refuse, with the statuses that would have been allowed.</summary>
public sealed record TransitionConflict(string Field, string From, string To, IReadOnlyList<string> Allowed);

/// <summary>
/// Everything one request's changes have in common — who, when, which request, why — and what
/// they produced: the history entries to insert and any rule the request broke. Domain methods
/// take it so each change can write its own history entry.
/// </summary>
public sealed class ChangeContext(string actor, DateTime now, string requestId, string? justification, bool mayOverride)
{
    public string Actor { get; } = actor;
    public DateTime Now { get; } = now;
    public string RequestId { get; } = requestId;
    public string? Justification { get; } = string.IsNullOrWhiteSpace(justification) ? null : justification;

    /// <summary>A refused transition is applied anyway only with a justification and the override scope.</summary>
    public bool CanOverride { get; } = mayOverride && !string.IsNullOrWhiteSpace(justification);

    public List<HistoryEntry> Entries { get; } = [];
    public Errors Errors { get; } = new();
    public TransitionConflict? Conflict { get; private set; }

    public void Refuse(string field, string from, string to, IReadOnlyList<string> allowed) =>
        Conflict ??= new TransitionConflict(field, from, to, allowed);

    public bool Failed => Errors.Any || Conflict is not null;
}
