using DeviceOps.Data;
using DeviceOps.Idempotency;
using Microsoft.AspNetCore.Http.HttpResults;

namespace DeviceOps.Auth;

/// <summary>
/// A cached token's revocation check (<see cref="TokenCache"/>), carried by the request's own
/// work instead of a read of its own. On PostgreSQL's hot endpoints — GET, PUT and PATCH of one
/// operation — the check was half of a GET's round trips and a third of the database's work for
/// one: a group of GETs (<see cref="Operations.ReadGroups"/>) checks all its requests' tokens in
/// the round trip that reads their operations (a GET read alone, in the batch that reads it), a
/// group of changes (<see cref="Operations.UpdateGroups"/>) in the round trip that locks and
/// reads. On SQLite a PUT or PATCH makes it in its write, on the writer's connection, before it
/// reads the operation. The outcome is read before anything read is answered or
/// anything is written, so a revocation holds from the next request on, as before.
/// </summary>
/// <remarks>
/// Only an endpoint marked <see cref="Carried"/> gets the check deferred to it, and never with
/// an <c>Idempotency-Key</c> (its stored answer is read before the endpoint runs). On SQLite only
/// a write defers it: a read from SQLite starts a transaction of its own either way, and every
/// commit of the writer empties a reader's page cache, so the check's own read cost a PUT a
/// reader, a transaction and a cold lookup, where the writer's connection has the token's pages
/// at hand; a GET's check made on the GET's own connection measured no gain and stays where it
/// was. The endpoint's <see cref="Filter"/> makes the check itself if no statement
/// carried it (a refused body, say), so a revoked token is answered 401 on every path.
/// </remarks>
public sealed class RevocationCheck
{
    /// <summary>A group's tokens, each found one with whether it is revoked.</summary>
    public const string ManySql = "SELECT secret_hash, revoked_at IS NOT NULL FROM tokens WHERE secret_hash = ANY($1)";

    private readonly TokenCache _cache;

    private RevocationCheck(string hash, TokenCache cache)
    {
        Hash = hash;
        _cache = cache;
    }

    /// <summary>The endpoint metadata that lets its requests carry the check.</summary>
    public static readonly object Carried = new CarriedMarker();

    public string Hash { get; }

    /// <summary>Whether the store has answered.</summary>
    public bool Done { get; private set; }

    /// <summary>Why the token is refused (the handler's words), once the store said so; else null.</summary>
    public string? Refusal { get; private set; }

    /// <summary>Defers the check of a cached token when the endpoint carries it; false when it must be made now.</summary>
    public static bool TryDefer(HttpContext http, SqlStore store, TokenCache cache, string hash)
    {
        var method = http.Request.Method;
        if (!(store.IsPostgres || HttpMethods.IsPut(method) || HttpMethods.IsPatch(method))
            || http.GetEndpoint()?.Metadata.GetMetadata<CarriedMarker>() is null
            || http.Request.Headers.ContainsKey(IdempotencyKeys.HeaderName))
        {
            return false;
        }
        http.Features.Set(new RevocationCheck(hash, cache));
        return true;
    }

    /// <summary>The request's check still to be made, or null (made, or never deferred).</summary>
    public static RevocationCheck? Pending(HttpContext http) => http.Features.Get<RevocationCheck>() is { Done: false } check ? check : null;

    /// <summary>Records the store's answer; a token revoked or gone leaves the cache.</summary>
    public void Complete(TokenCache.State state)
    {
        Done = true;
        Refusal = TokenCache.Refusal(state);
        if (Refusal is not null)
        {
            _cache.Forget(Hash);
        }
    }

    /// <summary>Makes the check on the write's own connection, inside its transaction; true when the token holds.</summary>
    public async Task<bool> MakeAsync(SqlSession session, CancellationToken cancellationToken)
    {
        Complete(await TokenCache.CheckAsync(session, Hash, cancellationToken));
        return Refusal is null;
    }

    /// <summary>Reads <see cref="TokenCache.StateSql"/>'s result, the current one of <paramref name="rows"/>.</summary>
    public async Task CompleteAsync(SqlRows rows, CancellationToken cancellationToken) =>
        Complete(await TokenCache.ReadStateAsync(rows, cancellationToken));

    /// <summary>Reads <see cref="ManySql"/>'s result, the current one of <paramref name="rows"/>, into each of <paramref name="checks"/>.</summary>
    public static async Task CompleteAllAsync(SqlRows rows, IReadOnlyList<RevocationCheck> checks, CancellationToken cancellationToken)
    {
        var revoked = new Dictionary<string, bool>(StringComparer.Ordinal);
        while (await rows.Reader.ReadAsync(cancellationToken))
        {
            revoked[rows.Reader.GetString(0)] = rows.Reader.GetBoolean(1);
        }
        foreach (var check in checks)
        {
            check.Complete(!revoked.TryGetValue(check.Hash, out var isRevoked) ? TokenCache.State.Unknown
                : isRevoked ? TokenCache.State.Revoked : TokenCache.State.Valid);
        }
    }

    /// <summary>The request's 401, when its token was refused; makes the check now if it is still pending.</summary>
    public static async Task<ChallengeHttpResult?> RefusedAsync(HttpContext http, CancellationToken cancellationToken)
    {
        if (http.Features.Get<RevocationCheck>() is not { } check)
        {
            return null;
        }
        if (!check.Done)
        {
            var store = http.RequestServices.GetRequiredService<SqlStore>();
            check.Complete(await TokenCache.CheckAsync(store, check.Hash, cancellationToken));
        }
        return check.Refusal is { } reason ? TokenAuthenticationHandler.Challenge(http, reason) : null;
    }

    /// <summary>
    /// The endpoint filter of an endpoint that carries the check: a revoked token's request is
    /// answered 401 whatever path the endpoint took, and the check is made here if none carried it.
    /// </summary>
    public static async ValueTask<object?> Filter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        return await RefusedAsync(context.HttpContext, context.HttpContext.RequestAborted) ?? result;
    }

    private sealed class CarriedMarker;
}

public static class RevocationCheckExtensions
{
    /// <summary>Lets the endpoint's requests carry their token's revocation check (<see cref="RevocationCheck"/>).</summary>
    public static RouteHandlerBuilder CarriesRevocationCheck(this RouteHandlerBuilder builder) =>
        builder.WithMetadata(RevocationCheck.Carried).AddEndpointFilter(RevocationCheck.Filter);
}
