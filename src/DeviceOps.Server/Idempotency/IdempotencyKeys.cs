using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace DeviceOps.Idempotency;

public sealed class IdempotencyOptions
{
    /// <summary>How long a stored response answers retries; at least a day, as clients expect.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(24);
}

/// <summary>The key and request fingerprint of the current request, for the handler that records its response.</summary>
public sealed record IdempotencyRequest(int TokenId, string Key, string RequestHash);

/// <summary>Thrown when a concurrent request with the same key committed first; the middleware replays its response.</summary>
public sealed class IdempotencyRaceException(Exception inner) : Exception("Another request with this Idempotency-Key committed first.", inner);

/// <summary>
/// <c>Idempotency-Key</c> on POST, PUT and PATCH: a repeat with the same key and request answers
/// the stored first response (with <c>Idempotent-Replayed: true</c>) without applying it again;
/// the same key with another request is a 422. The response is stored by the handler inside
/// its transaction (<see cref="RecordAsync"/>), so "applied" and "recorded" are one commit.
/// </summary>
public static class IdempotencyKeys
{
    public const string HeaderName = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    private const int MaxKeyLength = 255;

    public static IApplicationBuilder UseIdempotency(this IApplicationBuilder app)
    {
        var gates = new KeyGates();
        return app.Use((context, next) => HandleAsync(context, next, gates));
    }

    private static async Task HandleAsync(HttpContext context, RequestDelegate next, KeyGates gates)
    {
        var request = context.Request;
        if (!request.Headers.TryGetValue(HeaderName, out var values)
            || !(HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method))
            || !request.Path.StartsWithSegments("/api/v1")
            || context.Features.Get<Caller>()?.TokenId is not { } tokenId)
        {
            await next(context);
            return;
        }

        var key = values.ToString();
        if (key.Length is 0 or > MaxKeyLength || key.Any(c => c is < '!' or > '~'))
        {
            await WriteProblemAsync(context, Problems.Validation(HeaderName,
                $"Must be 1 to {MaxKeyLength} visible ASCII characters, e.g. a UUID."));
            return;
        }

        var limits = context.RequestServices.GetRequiredService<IOptions<BodyLimits>>().Value;
        var hash = await HashAsync(request, limits.MaxBatchBytes, context.RequestAborted);
        if (hash is null)
        {
            // Too large to be accepted anyway: let the endpoint answer its 413.
            await next(context);
            return;
        }

        // Retries with one key on this instance go one at a time: the second finds the first's
        // stored answer. (Run side by side, a creation's retry was refused as a duplicate of the
        // first's new name before it reached the key.) Instances sharing the store still race, and
        // the loser replays the winner's answer below.
        using var gate = await gates.EnterAsync((tokenId, key), context.RequestAborted);
        if (await ReplayAsync(context, tokenId, key, hash))
        {
            return;
        }
        context.Features.Set(new IdempotencyRequest(tokenId, key, hash));
        try
        {
            await next(context);
        }
        catch (IdempotencyRaceException) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            // The winner may still be committing (on SQLite, in the same group commit as this
            // request): wait briefly until its stored response is visible, then replay it.
            var waited = 0;
            for (var wait = 5; !await ReplayAsync(context, tokenId, key, hash); wait = Math.Min(wait * 2, 200))
            {
                if ((waited += wait) > 10_000)
                {
                    await WriteProblemAsync(context, new ConflictProblem(Problems.Create(409, "idempotency_key_in_use",
                        "Idempotency key in use", $"Another request with the Idempotency-Key \"{key}\" has not finished; retry shortly.")));
                    return;
                }
                await Task.Delay(wait, context.RequestAborted);
            }
        }
    }

    /// <summary>
    /// Stores the response a write handler is about to return, inside its open transaction.
    /// Does nothing for a request without <c>Idempotency-Key</c>.
    /// </summary>
    public static async Task RecordAsync<T>(HttpContext context, DeviceOpsDb db, int statusCode, T response, string? location,
        TimeProvider clock, CancellationToken cancellationToken)
    {
        if (ToRecord(context, statusCode, response, location, clock) is not { } record)
        {
            return;
        }
        db.Add(record);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException ex) when (UniqueViolation.Is(ex))
        {
            throw new IdempotencyRaceException(ex);
        }
    }

    /// <summary>The same, for a handler written in plain SQL.</summary>
    public static async Task RecordAsync<T>(HttpContext context, SqlSession session, int statusCode, T response, string? location,
        TimeProvider clock, CancellationToken cancellationToken)
    {
        try
        {
            if (await QueueRecordAsync(context, session, statusCode, response, location, clock, cancellationToken))
            {
                await session.FlushAsync(cancellationToken);
            }
        }
        catch (DbException ex) when (UniqueViolation.Is(ex))
        {
            throw new IdempotencyRaceException(ex);
        }
    }

    /// <summary>Whether the request carries an <c>Idempotency-Key</c> whose response is to be stored.</summary>
    public static bool IsRecorded(HttpContext context) => context.Features.Get<IdempotencyRequest>() is not null;

    /// <summary>
    /// PostgreSQL groups (<see cref="Operations.UpdateGroups"/>): queues the record with the
    /// group's other statements. A race for its key fails the group's transaction, and each of
    /// its requests is then written alone, where <see cref="RecordAsync{T}(HttpContext, SqlSession, int, T, string?, TimeProvider, CancellationToken)"/>
    /// answers the race. False when the request has no key to record.
    /// </summary>
    public static async Task<bool> QueueRecordAsync<T>(HttpContext context, SqlSession session, int statusCode, T response, string? location,
        TimeProvider clock, CancellationToken cancellationToken)
    {
        if (ToRecord(context, statusCode, response, location, clock) is not { } r)
        {
            return false;
        }
        await session.QueueAsync(InsertSql, [r.TokenId, r.Key, r.RequestHash, r.StatusCode, r.Body, r.Location, r.ETag, r.CreatedAt], cancellationToken);
        return true;
    }

    private const string InsertSql =
        "INSERT INTO idempotency_records (token_id, key, request_hash, status_code, body, location, e_tag, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    private static IdempotencyRecord? ToRecord<T>(HttpContext context, int statusCode, T response, string? location, TimeProvider clock)
    {
        if (context.Features.Get<IdempotencyRequest>() is not { } idempotent)
        {
            return null;
        }
        var options = context.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
        var body = response is null ? "" : JsonSerializer.Serialize(response, options);
        return new IdempotencyRecord(idempotent.TokenId, idempotent.Key, idempotent.RequestHash, statusCode, body, location,
            context.Response.Headers.ETag.ToString() is { Length: > 0 } etag ? etag : null, Rfc3339.Now(clock));
    }

    private static async Task<bool> ReplayAsync(HttpContext context, int tokenId, string key, string hash)
    {
        var db = context.RequestServices.GetRequiredService<DeviceOpsDb>();
        var record = await db.Set<IdempotencyRecord>().AsNoTracking()
            .FirstOrDefaultAsync(r => r.TokenId == tokenId && r.Key == key, context.RequestAborted);
        if (record is null)
        {
            return false;
        }
        if (record.RequestHash != hash)
        {
            var problem = Problems.Create(422, "idempotency_key_reused", "Idempotency key reused",
                $"The Idempotency-Key \"{key}\" was used for another request; use a new key for a new request.");
            await WriteProblemAsync(context, new StatusProblem(problem));
            return true;
        }
        var response = context.Response;
        response.StatusCode = record.StatusCode;
        response.Headers[ReplayedHeader] = "true";
        if (record.Location is not null)
        {
            response.Headers.Location = record.Location;
        }
        if (record.ETag is not null)
        {
            response.Headers.ETag = record.ETag;
        }
        if (record.Body.Length > 0)
        {
            response.ContentType = "application/json; charset=utf-8";
            await response.WriteAsync(record.Body, context.RequestAborted);
        }
        return true;
    }

    private static async Task<string?> HashAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        request.EnableBuffering();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{request.Method}\n{request.Path}{request.QueryString}\n"));
        var buffer = new byte[16 * 1024];
        long total = 0;
        int read;
        while ((read = await request.Body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            total += read;
            if (total > maxBytes)
            {
                request.Body.Position = 0;
                return null;
            }
            sha.AppendData(buffer, 0, read);
        }
        request.Body.Position = 0;
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static Task WriteProblemAsync(HttpContext context, ProblemResult result) => result.ExecuteAsync(context);

    /// <summary>Forgets stored responses once they are older than the retention.</summary>
    public sealed class Janitor(IServiceProvider services, IOptions<IdempotencyOptions> options, TimeProvider clock,
        ILogger<Janitor> logger) : PeriodicCleanup(services, clock, logger)
    {
        protected override string What => "expired idempotency records";

        protected override Task CleanAsync(DeviceOpsDb db, DateTime now, CancellationToken cancellationToken)
        {
            var cutoff = now - options.Value.Retention;
            return db.Set<IdempotencyRecord>().Where(r => r.CreatedAt < cutoff).ExecuteDeleteAsync(cancellationToken);
        }
    }

    /// <summary>One gate per (token, key) in use: its requests pass one at a time; an idle key keeps nothing.</summary>
    private sealed class KeyGates
    {
        private readonly ConcurrentDictionary<(int, string), Gate> _gates = new();

        public async Task<IDisposable> EnterAsync((int, string) id, CancellationToken cancellationToken)
        {
            Gate gate;
            while (true)
            {
                gate = _gates.GetOrAdd(id, _ => new Gate());
                lock (gate)
                {
                    // A gate its last user has left is being removed: take a new one.
                    if (gate.Users >= 0)
                    {
                        gate.Users++;
                        break;
                    }
                }
            }
            try
            {
                await gate.Turn.WaitAsync(cancellationToken);
            }
            catch
            {
                Leave(id, gate);
                throw;
            }
            return new Pass(this, id, gate);
        }

        private void Leave((int, string) id, Gate gate)
        {
            lock (gate)
            {
                if (--gate.Users == 0)
                {
                    gate.Users = -1;
                    _gates.TryRemove(KeyValuePair.Create(id, gate));
                }
            }
        }

        private sealed class Gate
        {
            public SemaphoreSlim Turn { get; } = new(1, 1);

            /// <summary>Requests holding or waiting for the turn; -1 once removed.</summary>
            public int Users { get; set; }
        }

        private sealed class Pass(KeyGates gates, (int, string) id, Gate gate) : IDisposable
        {
            private int _disposed;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    gate.Turn.Release();
                    gates.Leave(id, gate);
                }
            }
        }
    }
}
