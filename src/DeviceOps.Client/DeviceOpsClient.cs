using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace DeviceOps.Client;

/// <summary>How a <see cref="DeviceOpsClient"/> talks to the server.</summary>
public sealed class DeviceOpsClientOptions
{
    /// <summary>The server's address, e.g. <c>http://127.0.0.1:8080/</c>.</summary>
    public required Uri BaseAddress { get; init; }

    /// <summary>The bearer token (<c>dop_…</c>).</summary>
    public string? Token { get; init; }

    /// <summary>How many times a retryable call is tried again after a 429, a 503 or a network failure.</summary>
    public int MaxRetries { get; init; } = 8;

    /// <summary>The first backoff; each retry doubles it (with jitter) up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the event stream may stay silent before the connection is taken for dead and
    /// opened again; the server sends a heartbeat after 15 seconds of quiet.
    /// </summary>
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>Called before each retry's wait, e.g. to tell a user why a call is slow.</summary>
    public Action<RetryNotice>? OnRetry { get; init; }
}

/// <summary>Why and how long the client waits before trying a call again.</summary>
public sealed record RetryNotice(string Method, string Path, int Attempt, TimeSpan Delay, string Reason);

/// <summary>Paging, ordering and filters of a list call.</summary>
public sealed class ListOptions
{
    public int? Limit { get; init; }

    public int? Offset { get; init; }

    /// <summary><c>field</c> or <c>-field</c>.</summary>
    public string? Ordering { get; init; }

    /// <summary>Filters by name, e.g. <c>status=pending</c>; null values are left out.</summary>
    public IDictionary<string, string?> Filters { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// A typed client for the DeviceOps API. Every write carries an <c>Idempotency-Key</c> (a new
/// GUID per call unless one is given, the same one on each retry), so every call may be retried:
/// 429 and 503 answers and network failures are retried with exponential backoff that waits at
/// least as long as the server's <c>Retry-After</c>. Problem answers are thrown as
/// <see cref="DeviceOpsProblemException"/>.
/// </summary>
public sealed class DeviceOpsClient : IDisposable
{
    private const string Operations = "api/v1/inventory_device_operation/";
    private const string Devices = "api/v1/inventory_device/";
    private const string History = "api/v1/inventory_device_log/";
    private const string Tokens = "api/v1/token/";
    private const string Organizations = "api/v1/organization/";
    private const string Events = "api/v1/events/";

    private static readonly DeviceOpsJsonContext Json = DeviceOpsJsonContext.Default;

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly DeviceOpsClientOptions _options;

    /// <summary>A client with its own <see cref="HttpClient"/> on <paramref name="handler"/> (or a default one).</summary>
    public DeviceOpsClient(DeviceOpsClientOptions options, HttpMessageHandler? handler = null)
        : this(new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: handler is null)
        {
            Timeout = TimeSpan.FromSeconds(100),
        }, options)
    {
        _ownsHttp = true;
    }

    /// <summary>A client on a caller's <see cref="HttpClient"/> (e.g. from IHttpClientFactory); it is not disposed here.</summary>
    public DeviceOpsClient(HttpClient http, DeviceOpsClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        _http = http;
        _options = options;
    }

    public Uri BaseAddress => _options.BaseAddress;

    // --- devices -------------------------------------------------------------------------------

    public Task<Page<Device>> ListDevicesAsync(ListOptions? list = null, CancellationToken cancellationToken = default) =>
        GetAsync(Devices + Query(list), Json.PageDevice, cancellationToken);

    public Task<Device> GetDeviceAsync(int id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, Devices + Id(id), null, Json.Device, null, null, (d, etag, _) => d with { ETag = etag }, cancellationToken);

    public Task<Device> CreateDeviceAsync(DeviceWrite device, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, Devices, Body(device, Json.DeviceWrite), Json.Device, null, Key(idempotencyKey), (d, etag, _) => d with { ETag = etag }, cancellationToken);

    /// <summary>PATCH: changes the fields set in <paramref name="changes"/>; with <paramref name="ifMatch"/>, only if the device is unchanged since.</summary>
    public Task<Device> UpdateDeviceAsync(int id, DeviceWrite changes, string? ifMatch = null, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, Devices + Id(id), Body(changes, Json.DeviceWrite), Json.Device, ifMatch, Key(idempotencyKey),
            (d, etag, _) => d with { ETag = etag }, cancellationToken);

    /// <summary>Deletes a decommissioned device (its history stays).</summary>
    public Task DeleteDeviceAsync(int id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, Devices + Id(id), null, Json.JsonObject, null, null, (o, _, _) => o, cancellationToken);

    // --- operations ----------------------------------------------------------------------------

    public Task<Page<Operation>> ListOperationsAsync(ListOptions? list = null, CancellationToken cancellationToken = default) =>
        GetAsync(Operations + Query(list), Json.PageOperation, cancellationToken);

    public Task<Operation> GetOperationAsync(int id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, Operations + Id(id), null, Json.Operation, null, null, (o, etag, _) => o with { ETag = etag }, cancellationToken);

    public Task<Operation> CreateOperationAsync(OperationWrite operation, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, Operations, Body(operation, Json.OperationWrite), Json.Operation, null, Key(idempotencyKey), (o, etag, _) => o with { ETag = etag }, cancellationToken);

    /// <summary>PUT: replaces the operation's own fields and applies the device effect fields given.</summary>
    public Task<Operation> ReplaceOperationAsync(int id, OperationWrite operation, string? ifMatch = null, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, Operations + Id(id), Body(operation, Json.OperationWrite), Json.Operation, ifMatch, Key(idempotencyKey),
            (o, etag, _) => o with { ETag = etag }, cancellationToken);

    /// <summary>PATCH: changes the fields set in <paramref name="changes"/>.</summary>
    public Task<Operation> UpdateOperationAsync(int id, OperationWrite changes, string? ifMatch = null, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, Operations + Id(id), Body(changes, Json.OperationWrite), Json.Operation, ifMatch, Key(idempotencyKey),
            (o, etag, _) => o with { ETag = etag }, cancellationToken);

    /// <summary>POST with an array: opens every operation or none.</summary>
    public Task<BatchResult<Operation>> CreateOperationsAsync(IEnumerable<JsonObject> operations, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        BatchAsync(HttpMethod.Post, operations, idempotencyKey, cancellationToken);

    /// <summary>PATCH with an array of items with <c>id</c> (and optionally <c>version</c>): changes every operation or none.</summary>
    public Task<BatchResult<Operation>> UpdateOperationsAsync(IEnumerable<JsonObject> changes, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        BatchAsync(HttpMethod.Patch, changes, idempotencyKey, cancellationToken);

    /// <summary>PUT with an array of items with <c>id</c>: replaces every operation or none.</summary>
    public Task<BatchResult<Operation>> ReplaceOperationsAsync(IEnumerable<JsonObject> operations, string? idempotencyKey = null,
        CancellationToken cancellationToken = default) =>
        BatchAsync(HttpMethod.Put, operations, idempotencyKey, cancellationToken);

    private Task<BatchResult<Operation>> BatchAsync(HttpMethod method, IEnumerable<JsonObject> items, string? idempotencyKey,
        CancellationToken cancellationToken)
    {
        var array = new JsonArray([.. items.Select(i => i.DeepClone())]);
        var body = Encoding.UTF8.GetBytes(array.ToJsonString());
        return SendAsync(method, Operations, body, Json.BatchResultOperation, null, Key(idempotencyKey), (result, _, replayed) => result with { Replayed = replayed }, cancellationToken);
    }

    // --- history, organizations, tokens --------------------------------------------------------

    /// <summary>The append-only log, newest first; filters: device_id, operation_id, action, performed_by, request_id, since, until.</summary>
    public Task<Page<HistoryEntry>> ListHistoryAsync(ListOptions? list = null, CancellationToken cancellationToken = default) =>
        GetAsync(History + Query(list), Json.PageHistoryEntry, cancellationToken);

    public Task<Page<Organization>> ListOrganizationsAsync(ListOptions? list = null, CancellationToken cancellationToken = default) =>
        GetAsync(Organizations + Query(list), Json.PageOrganization, cancellationToken);

    public Task<Organization> CreateOrganizationAsync(string name, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, Organizations, Body(new JsonObject { ["name"] = name }, Json.JsonObject), Json.Organization, null,
            Key(idempotencyKey), (o, _, _) => o, cancellationToken);

    public Task<Page<ApiToken>> ListTokensAsync(ListOptions? list = null, CancellationToken cancellationToken = default) =>
        GetAsync(Tokens + Query(list), Json.PageApiToken, cancellationToken);

    /// <summary>Creates a token; the answer's <see cref="ApiToken.Token"/> is its secret, shown this once.</summary>
    public Task<ApiToken> CreateTokenAsync(TokenRequest token, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, Tokens, Body(token, Json.TokenRequest), Json.ApiToken, null, Key(idempotencyKey), (t, _, _) => t, cancellationToken);

    public Task RevokeTokenAsync(int id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, Tokens + Id(id), null, Json.JsonObject, null, null, (o, _, _) => o, cancellationToken);

    // --- events --------------------------------------------------------------------------------

    /// <summary>
    /// One page of the pull feed: up to <paramref name="limit"/> events after <paramref name="after"/>
    /// (null: from the oldest kept), optionally only of <paramref name="types"/> and one device.
    /// </summary>
    public Task<EventPage> ListEventsAsync(string? after = null, int? limit = null, IEnumerable<string>? types = null, string? deviceId = null,
        CancellationToken cancellationToken = default) =>
        GetAsync(Events + EventQuery(after, limit, types, deviceId), Json.EventPage, cancellationToken);

    /// <summary>
    /// The cursor at the end of the feed now (<c>?after=now</c>): <see cref="StreamEventsAsync"/>
    /// or <see cref="ListEventsAsync"/> from it return only events that commit later.
    /// </summary>
    public async Task<string> GetLatestEventCursorAsync(CancellationToken cancellationToken = default) =>
        (await ListEventsAsync("now", 1, cancellationToken: cancellationToken)).Cursor;

    /// <summary>
    /// The live event stream (<c>/api/v1/events/stream</c>, Server-Sent Events) after
    /// <paramref name="after"/> (null: from the oldest kept event), optionally only of
    /// <paramref name="types"/> and one device. It runs until cancelled. Heartbeats are not
    /// returned, but their id is kept as the position to resume from; a dropped or silent
    /// connection and a 429 or 503 are retried with backoff, sending <c>Last-Event-ID</c> of the
    /// last message seen, so no event is missed or returned twice. After
    /// <see cref="DeviceOpsClientOptions.MaxRetries"/> failed attempts in a row, and on any
    /// other refusal (401, 403, 422…), it throws.
    /// </summary>
    public async IAsyncEnumerable<ChangeEvent> StreamEventsAsync(string? after = null, IEnumerable<string>? types = null, string? deviceId = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const string path = Events + "stream";
        var query = EventQuery(null, null, types?.ToList(), deviceId);
        var position = after;
        var failures = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (response, retry, delay) = await OpenStreamAsync(path + query, position, failures + 1, cancellationToken);
            if (response is null)
            {
                failures++;
                await WaitAsync(HttpMethod.Get, path, failures, delay, retry!, cancellationToken);
                continue;
            }

            string reason;
            using (response)
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                idle.CancelAfter(_options.StreamIdleTimeout);
                var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                await using (body)
                {
                    var parser = SseParser.Create(body, ParseItem);
                    var items = parser.EnumerateAsync(idle.Token).GetAsyncEnumerator(idle.Token);
                    await using (items)
                    {
                        while (true)
                        {
                            bool next;
                            try
                            {
                                next = await items.MoveNextAsync();
                            }
                            catch (Exception ex) when (!cancellationToken.IsCancellationRequested
                                && ex is IOException or HttpRequestException or OperationCanceledException)
                            {
                                reason = idle.IsCancellationRequested
                                    ? $"no message in {Seconds(_options.StreamIdleTimeout)}"
                                    : $"connection lost: {ex.Message}";
                                break;
                            }
                            if (!next)
                            {
                                reason = "the server ended the stream";
                                break;
                            }
                            idle.CancelAfter(_options.StreamIdleTimeout);
                            // Any message proves the connection works: the backoff starts over.
                            failures = 0;
                            var item = items.Current;
                            if (item.EventId is { Length: > 0 } id)
                            {
                                position = id;
                            }
                            if (item.Data is { } change)
                            {
                                position = change.Cursor;
                                yield return change;
                            }
                        }
                    }
                }
            }
            failures++;
            if (failures > _options.MaxRetries)
            {
                throw new HttpRequestException($"The event stream failed {failures} times in a row; last: {reason}.");
            }
            await WaitAsync(HttpMethod.Get, path, failures, Backoff(failures), reason, cancellationToken);
        }
    }

    /// <summary>Heartbeats (and any other message without an event) parse to null.</summary>
    private static ChangeEvent? ParseItem(string eventType, ReadOnlySpan<byte> data) =>
        eventType == "heartbeat" || data.IsEmpty || data.SequenceEqual("null"u8)
            ? null
            : JsonSerializer.Deserialize(data, Json.ChangeEvent);

    /// <summary>Opens the stream: the response, or why and how long to wait before trying again; other refusals throw.</summary>
    private async Task<(HttpResponseMessage? Response, string? Retry, TimeSpan Delay)> OpenStreamAsync(string pathAndQuery, string? lastEventId,
        int attempt, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_options.BaseAddress, pathAndQuery));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
        if (_options.Token is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (lastEventId is { Length: > 0 })
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        }
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex) when (attempt <= _options.MaxRetries)
        {
            return (null, $"network error: {ex.Message}", Backoff(attempt));
        }
        catch (TaskCanceledException) when (attempt <= _options.MaxRetries && !cancellationToken.IsCancellationRequested)
        {
            return (null, "timed out", Backoff(attempt));
        }
        if (response.IsSuccessStatusCode)
        {
            return (response, null, TimeSpan.Zero);
        }
        using (response)
        {
            var status = (int)response.StatusCode;
            if (status is 429 or 503 && attempt <= _options.MaxRetries)
            {
                var delay = RetryAfter(response) is { } wait && wait > Backoff(attempt) ? wait : Backoff(attempt);
                return (null, $"{status} {response.ReasonPhrase}", delay);
            }
            throw Problem(response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
        }
    }

    private static string EventQuery(string? after, int? limit, IEnumerable<string>? types, string? deviceId)
    {
        var typeList = types?.Where(t => t.Length > 0).ToList();
        return Query(new ListOptions
        {
            Limit = limit,
            Filters =
            {
                ["after"] = after,
                ["type"] = typeList is { Count: > 0 } ? string.Join(',', typeList) : null,
                ["device_id"] = deviceId,
            },
        });
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0", CultureInfo.InvariantCulture) + " s";

    // --- the transport -------------------------------------------------------------------------

    private Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, path, null, type, null, null, (value, _, _) => value, cancellationToken);

    /// <summary>
    /// Sends one logical call, retrying it when that is safe: GET and DELETE are idempotent by
    /// nature, and every write here carries an Idempotency-Key, so the server applies it at most
    /// once however often it arrives.
    /// </summary>
    private async Task<T> SendAsync<T>(HttpMethod method, string path, byte[]? body, JsonTypeInfo<T> type, string? ifMatch,
        string? idempotencyKey, Func<T, string?, bool, T> finish, CancellationToken cancellationToken)
    {
        var retryable = method == HttpMethod.Get || method == HttpMethod.Delete || idempotencyKey is not null;
        for (var attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, new Uri(_options.BaseAddress, path));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
            if (_options.Token is { Length: > 0 } token)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
            if (idempotencyKey is not null)
            {
                request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
            }
            if (ifMatch is not null)
            {
                request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            }
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            }

            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            }
            catch (HttpRequestException ex) when (retryable && attempt <= _options.MaxRetries)
            {
                await WaitAsync(method, path, attempt, Backoff(attempt), $"network error: {ex.Message}", cancellationToken);
                continue;
            }
            catch (TaskCanceledException) when (retryable && attempt <= _options.MaxRetries && !cancellationToken.IsCancellationRequested)
            {
                await WaitAsync(method, path, attempt, Backoff(attempt), "timed out", cancellationToken);
                continue;
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is 429 or 503 && retryable && attempt <= _options.MaxRetries)
                {
                    var delay = RetryAfter(response) is { } wait && wait > Backoff(attempt) ? wait : Backoff(attempt);
                    await WaitAsync(method, path, attempt, delay, $"{status} {response.ReasonPhrase}", cancellationToken);
                    continue;
                }
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    throw Problem(response.StatusCode, text);
                }
                var etag = response.Headers.ETag?.ToString();
                var replayed = response.Headers.TryGetValues("Idempotent-Replayed", out var values) && values.Contains("true");
                if (text.Length == 0)
                {
                    return finish(default!, etag, replayed);
                }
                var value = JsonSerializer.Deserialize(text, type)
                    ?? throw new JsonException($"The server answered {method} {path} with null.");
                return finish(value, etag, replayed);
            }
        }
    }

    private async Task WaitAsync(HttpMethod method, string path, int attempt, TimeSpan delay, string reason, CancellationToken cancellationToken)
    {
        _options.OnRetry?.Invoke(new RetryNotice(method.Method, path, attempt, delay, reason));
        await Task.Delay(delay, cancellationToken);
    }

    /// <summary>Exponential backoff with jitter, so many clients rejected together do not come back together.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var exponential = _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 16));
        var capped = Math.Min(exponential, _options.MaxBackoff.TotalMilliseconds);
#pragma warning disable CA5394 // jitter, not security
        return TimeSpan.FromMilliseconds(capped * (0.5 + Random.Shared.NextDouble() / 2));
#pragma warning restore CA5394
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.RetryAfter is not { } retryAfter)
        {
            return null;
        }
        if (retryAfter.Delta is { } delta)
        {
            return delta;
        }
        if (retryAfter.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }
        return null;
    }

    private static DeviceOpsProblemException Problem(HttpStatusCode status, string text)
    {
        JsonObject? body = null;
        try
        {
            body = JsonNode.Parse(text) as JsonObject;
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, say): the exception carries the text instead.
        }
        return new DeviceOpsProblemException(status, body, text);
    }

    private static string Key(string? given) => given ?? Guid.NewGuid().ToString();

    private static string Id(int id) => id.ToString(CultureInfo.InvariantCulture) + "/";

    private static byte[] Body<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.SerializeToUtf8Bytes(value, type);

    private static string Query(ListOptions? list)
    {
        if (list is null)
        {
            return "";
        }
        var parts = new List<string>();
        void Add(string name, string? value)
        {
            if (value is not null)
            {
                parts.Add($"{Uri.EscapeDataString(name)}={Uri.EscapeDataString(value)}");
            }
        }
        Add("limit", list.Limit?.ToString(CultureInfo.InvariantCulture));
        Add("offset", list.Offset?.ToString(CultureInfo.InvariantCulture));
        Add("ordering", list.Ordering);
        foreach (var (name, value) in list.Filters)
        {
            Add(name, value);
        }
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }
}
