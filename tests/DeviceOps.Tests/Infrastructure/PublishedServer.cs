using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using DeviceOps.Testing;

namespace DeviceOps.Tests.Infrastructure;

/// <summary>
/// The server as a user gets it: <c>dotnet publish</c> output, run as a process of its own. Published
/// once per test class — or not at all when DEVICEOPS_SERVER_DIR names a folder a script (such as
/// scripts/test.sh) already published, so the SQLite and PostgreSQL runs share one build.
/// </summary>
public sealed class PublishedServerFixture : IAsyncLifetime
{
    public const string ServerDirSetting = "DEVICEOPS_SERVER_DIR";
    public const string ServerDll = "DeviceOps.Server.dll";

    private string? _ownFolder;

    public string Directory { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable(ServerDirSetting) is { Length: > 0 } published)
        {
            if (!File.Exists(Path.Combine(published, ServerDll)))
            {
                throw new InvalidOperationException($"{ServerDirSetting}={published} holds no {ServerDll}.");
            }
            Directory = published;
            return;
        }
        _ownFolder = System.IO.Directory.CreateTempSubdirectory("deviceops-published-").FullName;
        var root = RepositoryRoot();
        // No build servers: a lingering MSBuild node would inherit the test host's pipes.
        var result = await Processes.RunAsync(root, Processes.WithoutMsBuild(Environment.GetEnvironmentVariables()),
            TimeSpan.FromMinutes(10),
            "publish", Path.Combine(root, "src", "DeviceOps.Server"), "-c", "Release", "-o", _ownFolder, "--nologo", "--disable-build-servers");
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish failed ({result.ExitCode}):\n{result.StandardOutput}\n{result.StandardError}");
        }
        Directory = _ownFolder;
    }

    public Task DisposeAsync()
    {
        if (_ownFolder is not null)
        {
            Processes.TryDeleteFolder(_ownFolder);
        }
        return Task.CompletedTask;
    }

    /// <summary>The folder holding DeviceOps.slnx, found by walking up from the test binaries.</summary>
    public static string RepositoryRoot()
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
}

/// <summary>
/// One installation's working folder and store, as a user's would be: a fresh temporary folder as
/// working directory (so the default store ./data/deviceops.db lands in it), or — when
/// DEVICEOPS_TEST_POSTGRES names a PostgreSQL server — a fresh database passed in
/// DEVICEOPS_DATABASE. Every server and command started here shares it; disposing kills what
/// still runs and drops the store.
/// </summary>
public sealed class ServerHome : IAsyncDisposable
{
    private readonly PublishedServerFixture _server;
    private readonly List<ServerProcess> _processes = [];
    private readonly StringBuilder _transcript = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ThrowawayDatabase? _postgres;

    private ServerHome(PublishedServerFixture server, string folder)
    {
        _server = server;
        Folder = folder;
    }

    public string Folder { get; }

    /// <summary>The DEVICEOPS_DATABASE given to every process, or null for the default SQLite file.</summary>
    public string? Database { get; private set; }

    public string DefaultSqliteFile => Path.Combine(Folder, "data", "deviceops.db");

    public static async Task<ServerHome> CreateAsync(PublishedServerFixture server)
    {
        var home = new ServerHome(server, Directory.CreateTempSubdirectory("deviceops-home-").FullName);
        home._postgres = await ThrowawayDatabase.CreateAsync("deviceops_published");
        home.Database = home._postgres?.ConnectionString;
        return home;
    }

    /// <summary>Starts <c>dotnet DeviceOps.Server.dll ARGS --urls http://127.0.0.1:PORT</c> and waits for /healthz.</summary>
    public async Task<ServerProcess> StartAsync(string[]? args = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        // A free port can be taken between our probe and the server's bind; try another then.
        for (var attempt = 1; ; attempt++)
        {
            var process = ServerProcess.Start(Dll, Folder, ProcessEnvironment(environment), args ?? [], FreePort());
            _processes.Add(process);
            Note($"server {_processes.Count} started: {string.Join(' ', args ?? [])} on {process.BaseAddress}");
            try
            {
                await process.WaitUntilHealthyAsync(TimeSpan.FromSeconds(90));
                Note($"server {_processes.Count} healthy");
                return process;
            }
            catch (InvalidOperationException) when (attempt < 3 && process.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await process.DisposeAsync();
            }
        }
    }

    /// <summary>Runs an admin command of the server (<c>token create …</c>) on this installation's store.</summary>
    public async Task<CommandResult> RunCommandAsync(params string[] args)
    {
        Note($"command: {string.Join(' ', args)}");
        var result = await Processes.RunAsync(Folder, ProcessEnvironment(null), TimeSpan.FromMinutes(2), [Dll, .. args]);
        Note($"command exited {result.ExitCode}:\n{result.StandardOutput}{result.StandardError}");
        return result;
    }

    /// <summary>What happened here, with times: the commands, and every server's output. Tests print it, so a failure explains itself.</summary>
    public string Transcript()
    {
        var text = new StringBuilder();
        lock (_transcript)
        {
            text.Append(_transcript);
        }
        for (var i = 0; i < _processes.Count; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"--- output of server {i + 1}:\n{_processes[i].Output}");
        }
        return text.ToString();
    }

    private void Note(string line)
    {
        lock (_transcript)
        {
            _transcript.Append(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds:0.000}s] {line}\n");
        }
    }

    private string Dll => Path.Combine(_server.Directory, PublishedServerFixture.ServerDll);

    private Dictionary<string, string?> ProcessEnvironment(IReadOnlyDictionary<string, string>? extra)
    {
        var environment = new Dictionary<string, string?>();
        foreach (System.Collections.DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            var name = (string)entry.Key;
            // Nothing of the test run's own configuration may leak into the user's server.
            if (!name.StartsWith("DEVICEOPS_", StringComparison.OrdinalIgnoreCase)
                && !name.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)
                && !name.Equals("DOTNET_ENVIRONMENT", StringComparison.OrdinalIgnoreCase))
            {
                environment[name] = (string?)entry.Value;
            }
        }
        // Production, as installed: no demo data unless --demo asks for it.
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        if (Database is not null)
        {
            environment["DEVICEOPS_DATABASE"] = Database;
        }
        foreach (var (name, value) in extra ?? new Dictionary<string, string>())
        {
            environment[name] = value;
        }
        return environment;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }
        Note("servers stopped");
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
            Note("database dropped");
        }
        Processes.TryDeleteFolder(Folder);
    }
}

/// <summary>A running server process; its output is read as it comes, so its pipes never fill up.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly HttpClient _probe;
    private bool _disposed;

    private ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        _probe = Client();
    }

    public Uri BaseAddress { get; }

    /// <summary>Everything the process wrote so far, stdout and stderr interleaved.</summary>
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

    public bool HasExited => _process.HasExited;

    internal static ServerProcess Start(string dll, string workingDirectory, Dictionary<string, string?> environment, string[] args, int port)
    {
        var url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        var process = Processes.Create(workingDirectory, environment, [dll, .. args, "--urls", url]);
        var server = new ServerProcess(process, new Uri(url + "/"));
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Append(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds:0.000}s] {line}\n");
            }
        }
    }

    /// <summary>A client for this server over its socket; redirects are not followed, so a test sees them.</summary>
    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    internal async Task WaitUntilHealthyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The server exited with {_process.ExitCode} before it was healthy:\n{Output}");
            }
            try
            {
                using var response = await _probe.GetAsync("healthz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"The server was not healthy after {timeout}:\n{Output}");
    }

    /// <summary>Waits for a line of output to match, since the pipe delivers it a little after the write.</summary>
    public async Task<Match> WaitForOutputAsync(Regex pattern, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var match = pattern.Match(Output);
            if (match.Success)
            {
                return match;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No output matched {pattern}:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>Stops the server as a service manager does — SIGTERM, then a graceful shutdown — and returns its exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            if (OperatingSystem.IsWindows())
            {
                _process.Kill(entireProcessTree: true);
            }
            else
            {
                // The shell's kill builtin: no extra package and no native interop needed.
                var signal = await Processes.RunAsync(Path.GetTempPath(), null, TimeSpan.FromSeconds(30),
                    "/bin/sh", "-c", $"kill -TERM {_process.Id.ToString(CultureInfo.InvariantCulture)}");
                Assert.True(signal.ExitCode == 0, signal.StandardError);
            }
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    /// <summary>Kills the process with SIGKILL, as a power cut or the OOM killer would: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        // A test disposes its server and the home disposes every server it started: once is enough.
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _probe.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        _process.Dispose();
    }
}

public sealed record CommandResult(int ExitCode, string StandardOutput, string StandardError);

internal static class Processes
{
    /// <summary>The dotnet host running these tests, so a machine with several SDKs uses the same one.</summary>
    private static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
            ? host
            : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";

    /// <summary>Starts <c>dotnet ARGS</c> (or, when the first argument is an absolute program path, that program).</summary>
    internal static Process Create(string workingDirectory, Dictionary<string, string?>? environment, string[] args)
    {
        var direct = args.Length > 0 && Path.IsPathRooted(args[0]) && !args[0].EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        var info = new ProcessStartInfo(direct ? args[0] : DotnetHost)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var arg in direct ? args[1..] : args)
        {
            info.ArgumentList.Add(arg);
        }
        if (environment is not null)
        {
            info.Environment.Clear();
            foreach (var (name, value) in environment)
            {
                info.Environment[name] = value;
            }
        }
        return new Process { StartInfo = info, EnableRaisingEvents = true };
    }

    internal static async Task<CommandResult> RunAsync(string workingDirectory, Dictionary<string, string?>? environment, TimeSpan timeout,
        params string[] args)
    {
        using var process = Create(workingDirectory, environment, args);
        process.Start();
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', args)} did not finish in {timeout}:\n{await output}\n{await error}");
        }
        return new CommandResult(process.ExitCode, await output, await error);
    }

    internal static Dictionary<string, string?> WithoutMsBuild(System.Collections.IDictionary variables)
    {
        var environment = new Dictionary<string, string?>();
        foreach (System.Collections.DictionaryEntry entry in variables)
        {
            var name = (string)entry.Key;
            // `dotnet test` hands its MSBuild settings to the test host; a nested build must find its own.
            if (!name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase))
            {
                environment[name] = (string?)entry.Value;
            }
        }
        return environment;
    }

    internal static void TryDeleteFolder(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by an exiting process; the temp folder is cleaned by the OS.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }
}
