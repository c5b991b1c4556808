using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using DeviceOps.Data;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Auth;

/// <summary>
/// Validated tokens by secret hash: what a token grants (user, scopes, organizations, rate
/// limit, expiry) is fixed when it is issued — no call changes it later — so it is read from the
/// store once per instance and kept here, with its claims and its <see cref="Caller"/> built once.
/// </summary>
/// <remarks>
/// Revocation is the one change a token undergoes, and it must hold at once on every instance
/// sharing the store, whoever revoked it (an API call on another instance, or the <c>token
/// revoke</c> command against the store). So a cached token is not trusted blindly: every request
/// still reads the token's <c>revoked_at</c> by its unique index with one plain statement — not
/// the tracked-query, entity and claims work of a full lookup, and no notification channel whose
/// delivery could lag (LISTEN/NOTIFY on PostgreSQL has no SQLite counterpart, and lags by as long
/// as the listener takes to read). On the hot endpoints that statement travels with the request's
/// own work (<see cref="RevocationCheck"/>: PostgreSQL's first round trip, a SQLite change's
/// write) instead of costing a read of its own.
/// Expiry is checked on every request against the injected clock, from the cached expiry.
/// </remarks>
public sealed class TokenCache
{
    /// <summary>More distinct tokens than a deployment uses; beyond it the cache starts over rather than grow.</summary>
    public const int MaxEntries = 10_000;

    private readonly ConcurrentDictionary<string, Entry> _byHash = new(StringComparer.Ordinal);

    public Entry? Find(string hash) => _byHash.TryGetValue(hash, out var entry) ? entry : null;

    public Entry Add(ApiToken token)
    {
        if (_byHash.Count >= MaxEntries)
        {
            _byHash.Clear();
        }
        var entry = new Entry(token);
        _byHash[token.SecretHash] = entry;
        return entry;
    }

    public void Forget(string hash) => _byHash.TryRemove(hash, out _);

    /// <summary>Drops a token revoked through this instance (the per-request check would refuse it anyway).</summary>
    public void Forget(int tokenId)
    {
        foreach (var (hash, entry) in _byHash)
        {
            if (entry.Id == tokenId)
            {
                _byHash.TryRemove(hash, out _);
            }
        }
    }

    /// <summary>What the store says of a cached token now: still valid, revoked, or gone.</summary>
    public enum State
    {
        Valid,
        Revoked,
        Unknown,
    }

    /// <summary>The store's word on one token: a row saying whether it is revoked, or none (<see cref="ReadStateAsync"/>).</summary>
    public const string StateSql = "SELECT revoked_at IS NOT NULL FROM tokens WHERE secret_hash = $1";

    /// <summary>One indexed single-row read.</summary>
    public static async Task<State> CheckAsync(SqlStore store, string hash, CancellationToken cancellationToken)
    {
        await using var session = await store.ReadAsync(cancellationToken);
        return await CheckAsync(session, hash, cancellationToken);
    }

    /// <summary>The same read on a connection already open: a write's, inside its transaction (<see cref="RevocationCheck"/>).</summary>
    public static async Task<State> CheckAsync(SqlSession session, string hash, CancellationToken cancellationToken)
    {
        await using var rows = await session.QueryAsync(StateSql, [hash], cancellationToken);
        return await ReadStateAsync(rows, cancellationToken);
    }

    /// <summary>Reads <see cref="StateSql"/>'s result, the current one of <paramref name="rows"/>.</summary>
    public static async Task<State> ReadStateAsync(SqlRows rows, CancellationToken cancellationToken) =>
        !await rows.Reader.ReadAsync(cancellationToken) ? State.Unknown
            : rows.Reader.GetBoolean(0) ? State.Revoked : State.Valid;

    /// <summary>Why a token in this state is refused, as the 401 says it; null for a valid one.</summary>
    public static string? Refusal(State state) => state switch
    {
        State.Revoked => "The token has been revoked.",
        State.Unknown => "The token is unknown.",
        _ => null,
    };

    public sealed class Entry
    {
        private readonly Claim[] _claims;

        public Entry(ApiToken token)
        {
            Id = token.Id;
            ExpiresAt = token.ExpiresAt;
            var claims = new List<Claim>
            {
                new(ClaimTypes.Name, token.User),
                new(Caller.TokenIdClaim, token.Id.ToString(CultureInfo.InvariantCulture)),
            };
            if (token.RateLimitPerMinute is { } perMinute)
            {
                claims.Add(new Claim(Caller.RateLimitClaim, perMinute.ToString(CultureInfo.InvariantCulture)));
            }
            claims.AddRange(token.ScopeList.Select(s => new Claim(Caller.ScopeClaim, s)));
            claims.AddRange(token.OrganizationIdList.Select(o => new Claim(Caller.OrganizationClaim, o.ToString(CultureInfo.InvariantCulture))));
            _claims = [.. claims];
            Caller = new Caller(new ClaimsPrincipal(new ClaimsIdentity(_claims, TokenAuthenticationHandler.SchemeName)));
        }

        public int Id { get; }
        public DateTime? ExpiresAt { get; }

        /// <summary>Immutable, so one instance serves every request of the token.</summary>
        public Caller Caller { get; }

        public bool IsExpired(DateTime now) => ExpiresAt is { } expiresAt && expiresAt <= now;

        /// <summary>A principal of its own per request: a ClaimsPrincipal is mutable, its claims are not.</summary>
        public ClaimsPrincipal NewPrincipal() => new(new ClaimsIdentity(_claims, TokenAuthenticationHandler.SchemeName));
    }
}
