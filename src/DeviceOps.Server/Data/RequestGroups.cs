using System.Threading.Channels;

namespace DeviceOps.Data;

/// <summary>A request waiting in a <see cref="RequestGroups{T}"/>.</summary>
public interface IGroupedRequest
{
    CancellationToken Cancellation { get; }

    /// <summary>Answers the request as cancelled: it was, while it waited.</summary>
    void Cancel();
}

/// <summary>
/// Requests served in groups by one worker: a group takes every request waiting when it starts,
/// up to a maximum, so nothing waits for a group to fill, and requests gather while one is being
/// served. A request cancelled while it waited is answered so and left out. SQLite's one writer
/// (<see cref="SqliteGroupCommit"/>) and PostgreSQL's groups of operation writes and reads
/// (<see cref="Operations.UpdateGroups"/>, <see cref="Operations.ReadGroups"/>) run on it.
/// </summary>
public sealed class RequestGroups<T> : IAsyncDisposable where T : IGroupedRequest
{
    private readonly Channel<T> _queue = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;

    /// <param name="maxGroup">Most requests one group takes.</param>
    /// <param name="serve">Serves a group, answering each of its requests; the list is reused once it returns.</param>
    public RequestGroups(int maxGroup, Func<List<T>, Task> serve) => _worker = Task.Run(() => RunAsync(maxGroup, serve));

    /// <summary>Queues the request; false once the queue is closed (the server is stopping).</summary>
    public bool TryAdd(T request) => _queue.Writer.TryWrite(request);

    private async Task RunAsync(int maxGroup, Func<List<T>, Task> serve)
    {
        var group = new List<T>(maxGroup);
        while (await _queue.Reader.WaitToReadAsync())
        {
            group.Clear();
            while (group.Count < maxGroup && _queue.Reader.TryRead(out var request))
            {
                if (request.Cancellation.IsCancellationRequested)
                {
                    request.Cancel();
                }
                else
                {
                    group.Add(request);
                }
            }
            if (group.Count > 0)
            {
                await serve(group);
            }
        }
    }

    /// <summary>Closes the queue and waits for the requests already in it to be served.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker;
    }
}
