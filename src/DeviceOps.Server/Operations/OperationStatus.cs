namespace DeviceOps.Operations;

/// <summary>The status of a device operation and the moves allowed between them.</summary>
public static class OperationStatus
{
    public const string Pending = "pending";
    public const string Scheduled = "scheduled";
    public const string InProgress = "in_progress";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static readonly string[] All = [Pending, Scheduled, InProgress, Completed, Failed, Cancelled];

    /// <summary>The statuses of work not yet finished: an operation in one may still change.</summary>
    public static readonly string[] Open = [Pending, Scheduled, InProgress];

    private static readonly Dictionary<string, string[]> Arrows = new()
    {
        [Pending] = [Scheduled, InProgress, Cancelled],
        [Scheduled] = [InProgress, Cancelled],
        [InProgress] = [Completed, Failed, Cancelled],
        [Completed] = [],
        [Failed] = [],
        [Cancelled] = [],
    };

    private static readonly Dictionary<string, string[]> Reachable = All.ToDictionary(s => s, Closure);

    /// <summary>
    /// The statuses an operation may move to in one request: every status reachable along the
    /// arrows, so <c>pending → completed</c> records work after the fact, while going back
    /// (<c>completed → in_progress</c>) is refused.
    /// </summary>
    public static IReadOnlyList<string> AllowedFrom(string from) => Reachable.TryGetValue(from, out var next) ? next : [];

    public static bool CanMove(string from, string to) => AllowedFrom(from).Contains(to);

    public static bool IsFinal(string status) => Arrows.TryGetValue(status, out var next) && next.Length == 0;

    private static string[] Closure(string from)
    {
        var seen = new List<string>();
        var queue = new Queue<string>(Arrows[from]);
        while (queue.TryDequeue(out var next))
        {
            if (!seen.Contains(next))
            {
                seen.Add(next);
                foreach (var after in Arrows[next])
                {
                    queue.Enqueue(after);
                }
            }
        }
        return [.. All.Where(seen.Contains)];
    }
}
