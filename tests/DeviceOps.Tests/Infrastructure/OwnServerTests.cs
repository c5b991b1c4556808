namespace DeviceOps.Tests.Infrastructure;

/// <summary>
/// For tests whose data has fixed names (the seed's DEV-001) or that move the clock: a server and
/// store for each test, where other tests share one per class.
/// </summary>
public abstract class OwnServerTests : IAsyncLifetime, IDisposable
{
    protected DeviceOpsFactory Factory { get; } = new();

    public Task InitializeAsync() => Factory.InitializeAsync();

    public Task DisposeAsync() => ((IAsyncLifetime)Factory).DisposeAsync();

    public void Dispose()
    {
        Factory.Dispose();
        GC.SuppressFinalize(this);
    }
}
