using System.Diagnostics.Metrics;

namespace DeviceOps.Http;

/// <summary>
/// Gives a large batch's memory back once the batch is answered. A 10,000-item batch allocates
/// tens of MB that stay reachable until its response is written, so the GC promotes them to its
/// oldest generation, where they stay resident as garbage until the next full collection — which
/// a steady load of small requests may not bring for minutes — and each further batch grew the
/// heap again: in <c>bench/rss.sh</c> after four 10,000-item batches the server held 248 MB on
/// SQLite and 267 MB on PostgreSQL; with one aggressive full collection after each (it compacts
/// and returns to the system what it frees) 229 and 249 MB.
/// </summary>
/// <remarks>
/// The collection stops every thread for its pause — 20-30 ms on the benchmark's heap, once per
/// large batch, which itself takes hundreds — and runs after the response is sent, so the
/// batch's own caller does not wait for it. Counted in <c>deviceops.batch.memory_collections</c>.
/// </remarks>
public sealed class BatchMemory
{
    /// <summary>Items from which a batch counts as large.</summary>
    public const int LargeBatchItems = 1_000;

    public const string MeterName = "DeviceOps";

    /// <summary>One collection at a time: the heap is the process's, whichever server asked.</summary>
    private static readonly Lock s_collecting = new();

    private readonly Counter<long> _collections;
    private readonly ILogger<BatchMemory> _logger;

    public BatchMemory(IMeterFactory meters, ILogger<BatchMemory> logger)
    {
        _collections = meters.Create(MeterName).CreateCounter<long>("deviceops.batch.memory_collections",
            description: "Full collections run after a large batch to give its memory back");
        _logger = logger;
    }

    /// <summary>After <paramref name="http"/>'s response is sent, collects and returns the freed memory.</summary>
    public void GiveBackAfter(HttpContext http) =>
        http.Response.OnCompleted(static state =>
        {
            ((BatchMemory)state).Collect();
            return Task.CompletedTask;
        }, this);

    private void Collect()
    {
        lock (s_collecting)
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            _collections.Add(1);
            var collection = GC.GetGCMemoryInfo(GCKind.FullBlocking);
            _logger.LogDebug("After a large batch: collection {Index} paused {PauseMs:F1} ms, heap {HeapMb} MB, committed {CommittedMb} MB",
                collection.Index, collection.PauseDurations[0].TotalMilliseconds, collection.HeapSizeBytes >> 20,
                collection.TotalCommittedBytes >> 20);
        }
    }
}
