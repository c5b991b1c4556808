namespace DeviceOps.Data;

/// <summary>
/// A store clean-up that runs at start and then every ten minutes, each round in a scope of its
/// own; a failed round is logged and the next one tries again.
/// </summary>
public abstract class PeriodicCleanup(IServiceProvider services, TimeProvider clock, ILogger logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    /// <summary>What is cleaned, for the log line of a failed round.</summary>
    protected abstract string What { get; }

    protected abstract Task CleanAsync(DeviceOpsDb db, DateTime now, CancellationToken cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, clock);
        do
        {
            try
            {
                await using var scope = services.CreateAsyncScope();
                await CleanAsync(scope.ServiceProvider.GetRequiredService<DeviceOpsDb>(), clock.GetUtcNow().UtcDateTime, stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Could not remove {What}; will try again.", What);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
