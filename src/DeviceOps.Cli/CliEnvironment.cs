namespace DeviceOps.Cli;

/// <summary>
/// Everything the tool takes from the process around it, so tests can run it in-process with
/// their own output, environment and transport.
/// </summary>
public sealed record CliEnvironment(
    TextWriter Out,
    TextWriter Error,
    Func<string, string?> Variable,
    bool IsTerminal,
    Func<HttpMessageHandler>? Handler = null)
{
    public static CliEnvironment FromProcess() => new(
        Console.Out,
        Console.Error,
        Environment.GetEnvironmentVariable,
        !Console.IsOutputRedirected && !Console.IsErrorRedirected);
}
