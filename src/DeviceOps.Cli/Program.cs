using DeviceOps.Cli;

using var interrupt = new CancellationTokenSource();
// Ctrl+C ends the current request and lets `op apply` save where it stands before exiting.
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupt.Cancel();
};
return await Cli.RunAsync(args, CliEnvironment.FromProcess(), interrupt.Token);
