using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeviceOps.Client;

namespace DeviceOps.Cli;

/// <summary>The <c>deviceops</c> command line: every command, on <see cref="DeviceOpsClient"/>.</summary>
public static class Cli
{
    private static readonly DeviceOpsJsonContext Json = DeviceOpsJsonContext.Default;

    private static readonly Option<OutputFormat> OutputOption = new("--output", "-o")
    {
        Description = "table (default), json or csv",
        Recursive = true,
        DefaultValueFactory = _ => OutputFormat.Table,
    };

    private static readonly Option<int?> LimitOption = new("--limit") { Description = "Page size (server default 50, at most 1000)" };
    private static readonly Option<int?> OffsetOption = new("--offset") { Description = "Items to skip" };
    private static readonly Option<string?> OrderingOption = new("--ordering") { Description = "field or -field" };

    /// <summary>Runs one command line and returns the exit code: 0 ok, 1 the server refused or something failed, 2 bad usage or input, 130 interrupted.</summary>
    public static async Task<int> RunAsync(string[] args, CliEnvironment environment, CancellationToken cancellationToken = default)
    {
        var root = Build(environment);
        var configuration = new InvocationConfiguration
        {
            Output = environment.Out,
            Error = environment.Error,
            // Errors are reported by Guard below, one message and no stack trace; the host's
            // Ctrl+C handling is Program's, so in-process runs do not install signal handlers.
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        return await root.Parse(args).InvokeAsync(configuration, cancellationToken);
    }

    private static RootCommand Build(CliEnvironment environment)
    {
        var root = new RootCommand("deviceops — devices, operations, bulk changes, history, tokens and live events of a DeviceOps server.\n" +
            $"Configure with {Config.UrlVariable} and {Config.TokenVariable}, or `deviceops login`.");
        root.Options.Add(OutputOption);
        root.Subcommands.Add(Login(environment));
        root.Subcommands.Add(Devices(environment));
        root.Subcommands.Add(Operations(environment));
        root.Subcommands.Add(HistoryCommand(environment));
        root.Subcommands.Add(Tokens(environment));
        root.Subcommands.Add(EventsCommand.Create(environment));
        return root;
    }

    // --- login ---------------------------------------------------------------------------------

    private static Command Login(CliEnvironment environment)
    {
        var url = new Option<string>("--url") { Description = "The server, e.g. http://127.0.0.1:8080", Required = true };
        var token = new Option<string>("--token") { Description = "A token (dop_…)", Required = true };
        var command = new Command("login", "Store the server's URL and a token in the user's config file (mode 0600)") { url, token };
        command.SetAction(parse => Guard(environment, () =>
        {
            var address = Config.BaseAddress(parse.GetValue(url)!);
            var file = Config.Save(environment, new Settings(address.ToString(), parse.GetValue(token)));
            environment.Out.WriteLine($"Saved {address} and the token to {file}.");
            return Task.FromResult(0);
        }));
        return command;
    }

    // --- devices -------------------------------------------------------------------------------

    private static Command Devices(CliEnvironment environment)
    {
        var command = new Command("device", "Devices of the inventory");

        var organization = new Option<string?>("--organization") { Description = "Filter by organization name or id" };
        var status = new Option<string?>("--status") { Description = "Filter by operational status" };
        var type = new Option<string?>("--type") { Description = "Filter by device type" };
        var location = new Option<string?>("--location") { Description = "Filter by location" };
        var list = new Command("list", "List devices") { organization, status, type, location, LimitOption, OffsetOption, OrderingOption };
        list.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var page = await client.ListDevicesAsync(ListOptions(parse, ("organization", organization), ("operational_status", status),
                ("device_type", type), ("location", location)), ct);
            Out(environment, parse).List(page.Results.Select(d => JsonSerializer.SerializeToNode(d, Json.Device)),
                ["id", "device_id", "device_name", "operational_status", "location", "organization", "assigned_user"], page.Count);
            return 0;
        }));
        command.Subcommands.Add(list);

        var id = new Argument<int>("id") { Description = "The device's numeric id" };
        var show = new Command("show", "Show one device with its latest history") { id };
        show.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var device = await client.GetDeviceAsync(parse.GetValue(id), ct);
            Out(environment, parse).Item(Node(device, Json.Device));
            return 0;
        }));
        command.Subcommands.Add(show);

        var fields = new DeviceFields();
        var create = new Command("create", "Register a device");
        fields.AddTo(create, creating: true);
        create.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var device = await client.CreateDeviceAsync(fields.Read(parse), cancellationToken: ct);
            Out(environment, parse).Item(Node(device, Json.Device));
            return 0;
        }));
        command.Subcommands.Add(create);

        var updateFields = new DeviceFields();
        var updateId = new Argument<int>("id") { Description = "The device's numeric id" };
        var update = new Command("update", "Change some fields of a device (GET, then PATCH with If-Match)") { updateId };
        updateFields.AddTo(update, creating: false);
        update.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var changes = updateFields.Read(parse);
            if (changes == new DeviceWrite())
            {
                throw new UsageException("Nothing to change: give at least one field option (see --help).");
            }
            var current = await client.GetDeviceAsync(parse.GetValue(updateId), ct);
            var device = await client.UpdateDeviceAsync(current.Id, changes, current.ETag, cancellationToken: ct);
            Out(environment, parse).Item(Node(device, Json.Device));
            return 0;
        }));
        command.Subcommands.Add(update);
        return command;
    }

    private sealed class DeviceFields
    {
        private readonly Option<string?> _deviceId = new("--device-id") { Description = "The inventory code, e.g. DEV-001" };
        private readonly Option<string?> _name = new("--name") { Description = "device_name" };
        private readonly Option<string?> _serial = new("--serial") { Description = "serial_number" };
        private readonly Option<string?> _type = new("--type") { Description = "device_type, a slug such as network_switch" };
        private readonly Option<string?> _organization = new("--organization") { Description = "The organization's name or id" };
        private readonly Option<string?> _status = new("--status") { Description = "operational_status" };
        private readonly Option<string?> _location = new("--location");
        private readonly Option<string?> _assignedUser = new("--assigned-user") { Description = "An e-mail address" };
        private readonly Option<string?> _maintenanceNotes = new("--maintenance-notes");
        private readonly Option<DateTimeOffset?> _nextMaintenance = new("--next-maintenance") { Description = "RFC 3339 time" };
        private readonly Option<string[]> _config = new("--config") { Description = "KEY=VALUE, repeatable (true/false/numbers are typed)" };
        private readonly Option<string?> _justification = new("--justification") { Description = "Why (required for an override)" };

        public void AddTo(Command command, bool creating)
        {
            if (creating)
            {
                _deviceId.Required = _name.Required = _serial.Required = _type.Required = _organization.Required = true;
                command.Options.Add(_deviceId);
            }
            foreach (var option in new Option[] { _name, _serial, _type, _organization, _status, _location, _assignedUser, _maintenanceNotes, _nextMaintenance, _config, _justification })
            {
                command.Options.Add(option);
            }
        }

        public DeviceWrite Read(ParseResult parse) => new(
            parse.GetValue(_deviceId), parse.GetValue(_name), parse.GetValue(_serial), parse.GetValue(_type), parse.GetValue(_organization),
            parse.GetValue(_status), parse.GetValue(_location), parse.GetValue(_assignedUser), Configuration(parse.GetValue(_config)),
            parse.GetValue(_maintenanceNotes), parse.GetValue(_nextMaintenance), parse.GetValue(_justification));
    }

    // --- operations ----------------------------------------------------------------------------

    private static Command Operations(CliEnvironment environment)
    {
        var command = new Command("op", "Device operations");

        var device = new Option<string?>("--device") { Description = "Filter by device_id (the inventory code)" };
        var status = new Option<string?>("--status") { Description = "Filter by status" };
        var type = new Option<string?>("--type") { Description = "Filter by operation_type" };
        var operatorId = new Option<string?>("--operator") { Description = "Filter by operator_id" };
        var list = new Command("list", "List operations") { device, status, type, operatorId, LimitOption, OffsetOption, OrderingOption };
        list.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var page = await client.ListOperationsAsync(ListOptions(parse, ("device_id", device), ("status", status),
                ("operation_type", type), ("operator_id", operatorId)), ct);
            Out(environment, parse).List(page.Results.Select(o => JsonSerializer.SerializeToNode(o, Json.Operation)),
                ["id", "device_id", "operation_type", "status", "operator_id", "operational_status", "updated_at"], page.Count);
            return 0;
        }));
        command.Subcommands.Add(list);

        var id = new Argument<int>("id") { Description = "The operation's id" };
        var show = new Command("show", "Show one operation with its device and latest history") { id };
        show.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            Out(environment, parse).Item(Node(await client.GetOperationAsync(parse.GetValue(id), ct), Json.Operation));
            return 0;
        }));
        command.Subcommands.Add(show);

        var createFields = new OperationFields();
        var create = new Command("create", "Open an operation on a device");
        createFields.AddTo(create, creating: true);
        create.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var operation = await client.CreateOperationAsync(createFields.Read(parse), cancellationToken: ct);
            Out(environment, parse).Item(Node(operation, Json.Operation));
            return 0;
        }));
        command.Subcommands.Add(create);

        var updateFields = new OperationFields();
        var updateId = new Argument<int>("id") { Description = "The operation's id" };
        var update = new Command("update", "Change an operation and its device: GET, modify, then PUT with If-Match of the GET's ETag") { updateId };
        updateFields.AddTo(update, creating: false);
        update.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var changes = updateFields.Read(parse);
            if (changes == new OperationWrite())
            {
                throw new UsageException("Nothing to change: give at least one field option (see --help).");
            }
            var current = await client.GetOperationAsync(parse.GetValue(updateId), ct);
            // PUT replaces the operation's own fields, so it carries the current ones with the
            // changes on top; device fields are sent only when asked to change.
            var replacement = changes with
            {
                DeviceId = current.DeviceId,
                OperationType = changes.OperationType ?? current.OperationType,
                Status = changes.Status ?? current.Status,
                OperatorId = changes.OperatorId ?? current.OperatorId,
                Description = changes.Description ?? current.Description,
                Notes = changes.Notes ?? current.Notes,
                StartedAt = changes.StartedAt ?? current.StartedAt,
                CompletedAt = changes.CompletedAt ?? current.CompletedAt,
            };
            var operation = await client.ReplaceOperationAsync(current.Id, replacement, current.ETag, cancellationToken: ct);
            Out(environment, parse).Item(Node(operation, Json.Operation));
            return 0;
        }));
        command.Subcommands.Add(update);

        command.Subcommands.Add(ApplyCommand.Create(environment));
        return command;
    }

    private sealed class OperationFields
    {
        private readonly Option<string?> _device = new("--device") { Description = "device_id: the device's inventory code" };
        private readonly Option<string?> _type = new("--type") { Description = "operation_type, e.g. maintenance" };
        private readonly Option<string?> _status = new("--status") { Description = "pending, scheduled, in_progress, completed, failed, cancelled" };
        private readonly Option<string?> _operator = new("--operator") { Description = "operator_id" };
        private readonly Option<string?> _description = new("--description");
        private readonly Option<string?> _notes = new("--note", "--notes") { Description = "notes" };
        private readonly Option<DateTimeOffset?> _startedAt = new("--started-at") { Description = "RFC 3339 time" };
        private readonly Option<DateTimeOffset?> _completedAt = new("--completed-at") { Description = "RFC 3339 time" };
        private readonly Option<string?> _operationalStatus = new("--operational-status") { Description = "The device's new status" };
        private readonly Option<string?> _location = new("--location") { Description = "The device's new location" };
        private readonly Option<string?> _assignedUser = new("--assigned-user") { Description = "The device's new user (e-mail)" };
        private readonly Option<string?> _maintenanceNotes = new("--maintenance-notes");
        private readonly Option<DateTimeOffset?> _nextMaintenance = new("--next-maintenance") { Description = "RFC 3339 time" };
        private readonly Option<string[]> _config = new("--config") { Description = "KEY=VALUE for the device's configuration, repeatable" };
        private readonly Option<string?> _justification = new("--justification") { Description = "Why (required for an override)" };

        public void AddTo(Command command, bool creating)
        {
            if (creating)
            {
                _device.Required = _type.Required = true;
                command.Options.Add(_device);
            }
            foreach (var option in new Option[] { _type, _status, _operator, _description, _notes, _startedAt, _completedAt, _operationalStatus, _location, _assignedUser, _maintenanceNotes, _nextMaintenance, _config, _justification })
            {
                command.Options.Add(option);
            }
        }

        public OperationWrite Read(ParseResult parse) => new(
            parse.GetValue(_device), parse.GetValue(_type), parse.GetValue(_status), parse.GetValue(_operator), parse.GetValue(_description),
            parse.GetValue(_notes), parse.GetValue(_startedAt), parse.GetValue(_completedAt), parse.GetValue(_operationalStatus),
            parse.GetValue(_location), parse.GetValue(_assignedUser), Configuration(parse.GetValue(_config)), parse.GetValue(_maintenanceNotes),
            parse.GetValue(_nextMaintenance), parse.GetValue(_justification));
    }

    // --- history -------------------------------------------------------------------------------

    private static Command HistoryCommand(CliEnvironment environment)
    {
        var device = new Argument<string>("device-id") { Description = "The device's inventory code, e.g. DEV-001" };
        var action = new Option<string?>("--action") { Description = "Filter by action, e.g. status_change" };
        var operation = new Option<string?>("--operation") { Description = "Filter by operation id" };
        var command = new Command("history", "A device's operational history, newest first") { device, action, operation, LimitOption, OffsetOption };
        command.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var list = ListOptions(parse, ("action", action), ("operation_id", operation));
            list.Filters["device_id"] = parse.GetValue(device);
            var page = await client.ListHistoryAsync(list, ct);
            Out(environment, parse).List(page.Results.Select(h => JsonSerializer.SerializeToNode(h, Json.HistoryEntry)),
                ["id", "timestamp", "action", "from_status", "to_status", "operation_id", "performed_by", "changes"], page.Count);
            return 0;
        }));
        return command;
    }

    // --- tokens --------------------------------------------------------------------------------

    private static Command Tokens(CliEnvironment environment)
    {
        var command = new Command("token", "API tokens (needs an admin token)");

        var user = new Option<string>("--user") { Description = "The token's user, an e-mail", Required = true };
        var scopes = new Option<string>("--scopes") { Description = "Comma-separated, e.g. operations:read,operations:write", Required = true };
        var organizations = new Option<string[]>("--organization") { Description = "Limit to this organization (name or id), repeatable" };
        var expires = new Option<DateTimeOffset?>("--expires") { Description = "RFC 3339 expiry" };
        var rate = new Option<int?>("--rate-limit") { Description = "Requests per minute" };
        var description = new Option<string?>("--description");
        var create = new Command("create", "Create a token and print its secret (shown once)") { user, scopes, organizations, expires, rate, description };
        create.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var orgs = parse.GetValue(organizations);
            var token = await client.CreateTokenAsync(new TokenRequest(parse.GetValue(user)!,
                [.. parse.GetValue(scopes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
                orgs is { Length: > 0 } ? orgs : null, parse.GetValue(expires), parse.GetValue(rate), parse.GetValue(description)), cancellationToken: ct);
            var format = parse.GetValue(OutputOption);
            if (format == OutputFormat.Table)
            {
                environment.Out.WriteLine(token.Token);
                environment.Error.WriteLine($"Token {token.Id} for {token.User} ({string.Join(", ", token.Scopes)}): the secret above is shown only now.");
            }
            else
            {
                Out(environment, parse).Item(Node(token, Json.ApiToken));
            }
            return 0;
        }));
        command.Subcommands.Add(create);

        var list = new Command("list", "List tokens (never their secrets)") { LimitOption, OffsetOption };
        list.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            var page = await client.ListTokensAsync(ListOptions(parse), ct);
            Out(environment, parse).List(page.Results.Select(t => JsonSerializer.SerializeToNode(t, Json.ApiToken)),
                ["id", "user", "scopes", "organizations", "rate_limit_per_minute", "expires_at", "revoked_at", "hint"], page.Count);
            return 0;
        }));
        command.Subcommands.Add(list);

        var id = new Argument<int>("id") { Description = "The token's id" };
        var revoke = new Command("revoke", "Revoke a token, effective at once") { id };
        revoke.SetAction((parse, ct) => Guard(environment, async () =>
        {
            using var client = Connect(environment);
            await client.RevokeTokenAsync(parse.GetValue(id), ct);
            environment.Out.WriteLine($"Token {parse.GetValue(id)} revoked.");
            return 0;
        }));
        command.Subcommands.Add(revoke);
        return command;
    }

    // --- shared --------------------------------------------------------------------------------

    internal static DeviceOpsClient Connect(CliEnvironment environment, Action<RetryNotice>? onRetry = null)
    {
        var settings = Config.Load(environment);
        var options = new DeviceOpsClientOptions
        {
            BaseAddress = Config.BaseAddress(settings.Url!),
            Token = settings.Token,
            OnRetry = onRetry ?? (notice => environment.Error.WriteLine(
                $"waiting {Output.Seconds(notice.Delay)} before retry {notice.Attempt} of {notice.Method} /{notice.Path}: {notice.Reason}")),
        };
        return new DeviceOpsClient(options, environment.Handler?.Invoke());
    }

    internal static OutputFormat Format(ParseResult parse) => parse.GetValue(OutputOption);

    internal static Output Out(CliEnvironment environment, ParseResult parse) => new(environment.Out, parse.GetValue(OutputOption));

    private static JsonObject Node<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        (JsonObject)JsonSerializer.SerializeToNode(value, type)!;

    private static ListOptions ListOptions(ParseResult parse, params (string Name, Option<string?> Option)[] filters)
    {
        var list = new ListOptions
        {
            Limit = parse.GetValue(LimitOption),
            Offset = parse.GetValue(OffsetOption),
            Ordering = parse.CommandResult.Command.Options.Contains(OrderingOption) ? parse.GetValue(OrderingOption) : null,
        };
        foreach (var (name, option) in filters)
        {
            list.Filters[name] = parse.GetValue(option);
        }
        return list;
    }

    /// <summary>KEY=VALUE pairs as a configuration object; true/false and numbers keep their JSON type, "null" removes a key.</summary>
    internal static JsonObject? Configuration(string[]? pairs)
    {
        if (pairs is null || pairs.Length == 0)
        {
            return null;
        }
        var configuration = new JsonObject();
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--config {pair}: expected KEY=VALUE.");
            }
            configuration[pair[..equals]] = ScalarValue(pair[(equals + 1)..]);
        }
        return configuration;
    }

    internal static JsonNode? ScalarValue(string text) => text switch
    {
        "true" => JsonValue.Create(true),
        "false" => JsonValue.Create(false),
        "null" => null,
        _ when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => JsonValue.Create(integer),
        _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number) => JsonValue.Create(number),
        _ => JsonValue.Create(text),
    };

    /// <summary>Runs a command's work and turns every failure into a message and an exit code: no stack traces.</summary>
    internal static async Task<int> Guard(CliEnvironment environment, Func<Task<int>> work)
    {
        try
        {
            return await work();
        }
        catch (DeviceOpsProblemException problem)
        {
            Report(environment.Error, problem);
            return 1;
        }
        catch (UsageException usage)
        {
            environment.Error.WriteLine($"error: {usage.Message}");
            return usage.ExitCode;
        }
        catch (HttpRequestException network)
        {
            environment.Error.WriteLine($"error: cannot reach the server: {network.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            environment.Error.WriteLine("interrupted");
            return 130;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or FormatException)
        {
            environment.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
    }

    internal static void Report(TextWriter error, DeviceOpsProblemException problem)
    {
        error.WriteLine($"error: {problem.Title} ({(int)problem.Status} {problem.Code})");
        if (problem.Detail is { Length: > 0 } detail)
        {
            error.WriteLine($"  {detail}");
        }
        foreach (var (field, messages) in problem.Errors)
        {
            foreach (var message in messages)
            {
                error.WriteLine($"  {(field.Length == 0 ? "(body)" : field)}: {message}");
            }
        }
        if (problem.AllowedNextStates.Count > 0 || problem.Status == HttpStatusCode.Conflict && problem.Code == "invalid_transition")
        {
            error.WriteLine($"  allowed next states: {(problem.AllowedNextStates.Count == 0 ? "none" : string.Join(", ", problem.AllowedNextStates))}");
        }
        if (problem.RequestId is { Length: > 0 } requestId)
        {
            error.WriteLine($"  request id: {requestId}");
        }
    }
}
