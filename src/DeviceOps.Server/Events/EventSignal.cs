using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace DeviceOps.Events;

/// <summary>
/// Wakes live streams and the webhook dispatcher when this process commits a change, so they
/// need not poll fast; a one-second poll still catches other instances' commits.
/// </summary>
public sealed class EventSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The pulse to wait for; take it before reading, so a commit in between is not missed.</summary>
    public Task Next() => Volatile.Read(ref _next).Task;

    public void Pulse() => Interlocked.Exchange(ref _next, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public static async Task WaitAsync(Task pulse, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await pulse.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
        }
    }

    /// <summary>Pulses after every committed transaction of the store.</summary>
    public sealed class CommitInterceptor(EventSignal signal) : DbTransactionInterceptor
    {
        public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => signal.Pulse();

        public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            signal.Pulse();
            return Task.CompletedTask;
        }
    }
}
