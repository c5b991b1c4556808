using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DeviceOps.Cli;
using DeviceOps.Client;
using DeviceOps.Testing;

namespace DeviceOps.Cli.Tests;

/// <summary>
/// The published server as a process of its own on a loopback port, as DeviceOps.Tests'
/// PublishedServerFixture starts it: the folder in DEVICEOPS_SERVER_DIR (scripts/test.sh publishes
/// once), else a publish of our own. Its store is a SQLite file in a temporary folder, or a fresh
/// database on the PostgreSQL that DEVICEOPS_TEST_POSTGRES names. Rate-limit windows are 2 s so
/// a limited token recovers quickly; an admin token comes from DEVICEOPS_BOOTSTRAP_TOKEN.
/// </summary>
#pragma warning disable CA1001 // xunit ends a fixture through IAsyncLifetime.DisposeAsync, which disposes the process
public sealed class CliServer : IAsyncLifetime
#pragma warning restore CA1001
{
    public const string AdminToken = "cli-tests-admin-token-0123456789";

    private readonly StringBuilder _output = new();
    private Process? _process;
    private string _home = "";
    private string? _ownPublish;
    private ThrowawayDatabase? _database;

    public Uri BaseAddress { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async Task InitializeAsync()
    {
        _home = Directory.CreateTempSubdirectory("deviceops-cli-tests-").FullName;
        var serverDir = Environment.GetEnvironmentVariable("DEVICEOPS_SERVER_DIR");
        if (string.IsNullOrEmpty(serverDir))
        {
            serverDir = _ownPublish = Path.Combine(_home, "server");
            await RunAsync(RepositoryRoot(), TimeSpan.FromMinutes(10), "publish", Path.Combine(RepositoryRoot(), "src", "DeviceOps.Server"),
                "-c", "Release", "-o", serverDir, "--nologo", "--disable-build-servers");
        }
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DEVICEOPS_BOOTSTRAP_TOKEN"] = AdminToken,
            ["DeviceOps__RateLimit__WindowSeconds"] = "2",
        };
        if ((_database = await ThrowawayDatabase.CreateAsync("deviceops_cli")) is { } database)
        {
            environment["DEVICEOPS_DATABASE"] = database.ConnectionString;
        }

        var port = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
        var info = new ProcessStartInfo(DotnetHost)
        {
            WorkingDirectory = _home,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { Path.Combine(serverDir, "DeviceOps.Server.dll"), "--urls", BaseAddress.ToString().TrimEnd('/') })
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var name in info.Environment.Keys.ToList())
        {
            // Nothing of the test run's own configuration may leak into the server.
            if (name.StartsWith("DEVICEOPS_", StringComparison.OrdinalIgnoreCase) || name.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase))
            {
                info.Environment.Remove(name);
            }
        }
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var probe = new HttpClient { BaseAddress = BaseAddress };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The server exited with {_process.ExitCode}:\n{Output}");
            }
            try
            {
                if ((await probe.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The server was not healthy in 90 s:\n{Output}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>A typed client for setting up and checking, with the admin token unless another is given.</summary>
    public DeviceOpsClient Client(string? token = null) =>
        new(new DeviceOpsClientOptions { BaseAddress = BaseAddress, Token = token ?? AdminToken });

    /// <summary>The environment of one CLI run: the server and token in DEVICEOPS_URL/TOKEN, a private config folder.</summary>
    public Dictionary<string, string?> Variables(string? token = null, string? configHome = null) => new()
    {
        [Config.UrlVariable] = BaseAddress.ToString(),
        [Config.TokenVariable] = token ?? AdminToken,
        ["XDG_CONFIG_HOME"] = configHome ?? Path.Combine(_home, "config-unused"),
        ["HOME"] = _home,
    };

    public string NewFolder() => Directory.CreateDirectory(Path.Combine(_home, "run-" + Guid.NewGuid().ToString("N"))).FullName;

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by the exiting server; the temp folder is cleaned by the OS.
        }
    }

    private static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static async Task RunAsync(string folder, TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo(DotnetHost) { WorkingDirectory = folder, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            // `dotnet test` hands its MSBuild settings to the test host; a nested build must find its own.
            info.Environment.Remove(name);
        }
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cancel.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet {string.Join(' ', args)} failed:\n{await output}\n{await error}");
        }
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "DeviceOps.slnx")))
            {
                return folder.FullName;
            }
        }
        throw new InvalidOperationException($"No DeviceOps.slnx above {AppContext.BaseDirectory}.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>One in-process run of the CLI: its exit code and what it printed.</summary>
public sealed record CliRun(int ExitCode, string Out, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout:\n{Out}\n--- stderr:\n{Error}";
}
