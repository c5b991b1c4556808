using System.Security.Claims;
using System.Text.Encodings.Web;
using DeviceOps.Data;
using DeviceOps.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace DeviceOps.Auth;

/// <summary>Who is calling: the token's user, scopes and organization limits.</summary>
public sealed class Caller
{
    public const string ScopeClaim = "scope";
    public const string OrganizationClaim = "org";
    public const string TokenIdClaim = "token_id";
    public const string RateLimitClaim = "rate_limit_per_minute";

    private readonly HashSet<string> _scopes;
    private readonly HashSet<int>? _organizations;

    public Caller(ClaimsPrincipal user)
    {
        Email = user.FindFirst(ClaimTypes.Name)?.Value ?? "";
        TokenId = user.FindFirst(TokenIdClaim)?.Value is { } id ? int.Parse(id, System.Globalization.CultureInfo.InvariantCulture) : null;
        RateLimitPerMinute = user.FindFirst(RateLimitClaim)?.Value is { } perMinute
            ? int.Parse(perMinute, System.Globalization.CultureInfo.InvariantCulture)
            : null;
        _scopes = [.. user.FindAll(ScopeClaim).Select(c => c.Value)];
        var organizations = user.FindAll(OrganizationClaim).Select(c => int.Parse(c.Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        _organizations = organizations.Count == 0 ? null : [.. organizations];
    }

    public string Email { get; }

    /// <summary>The token's id; null for a principal without a token.</summary>
    public int? TokenId { get; }

    /// <summary>The token's own rate limit, or null for the default.</summary>
    public int? RateLimitPerMinute { get; }

    /// <summary>The organizations the token is limited to, or null for all.</summary>
    public IReadOnlySet<int>? Organizations => _organizations;

    /// <summary><c>admin</c> holds every scope.</summary>
    public bool Has(string scope) => _scopes.Contains(scope) || _scopes.Contains(Scopes.Admin);

    public bool CanSee(int organizationId) => _organizations is null || _organizations.Contains(organizationId);

    private RateLimitKey? _rateLimitKey;

    /// <summary>
    /// The token's rate-limit partition at <paramref name="limit"/> per minute: made once, as a
    /// caller serves every request of its token, and made again only if the limit changes.
    /// </summary>
    public string RateLimitPartition(int limit)
    {
        if (_rateLimitKey is not { } known || known.Limit != limit)
        {
            _rateLimitKey = known = new RateLimitKey(limit, $"token:{TokenId}:{limit}");
        }
        return known.Key;
    }

    private sealed record RateLimitKey(int Limit, string Key);
}

/// <summary>
/// Authenticates <c>Authorization: Bearer &lt;secret&gt;</c> against the stored hashes: a token is
/// looked up once per instance and cached (<see cref="TokenCache"/>), and every request still
/// checks the store for its revocation, so a revocation takes effect at once on every instance
/// sharing the store — here, or on PostgreSQL's hot endpoints with the request's first statement
/// (<see cref="RevocationCheck"/>).
/// </summary>
public sealed class TokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    SqlStore store,
    TokenCache cache,
    TimeProvider clock,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";
    private const string FailureKey = "deviceops.auth.failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return Fail("The Authorization header must be 'Bearer <token>'.");
        }
        var secret = header[7..].Trim();
        var hash = ApiToken.Hash(secret);
        var entry = cache.Find(hash);
        if (entry is null)
        {
            var db = Context.RequestServices.GetRequiredService<DeviceOpsDb>();
            var token = await db.Tokens.AsNoTracking().FirstOrDefaultAsync(t => t.SecretHash == hash, Context.RequestAborted);
            if (token is null || token.RevokedAt is not null)
            {
                return Fail(TokenCache.Refusal(token is null ? TokenCache.State.Unknown : TokenCache.State.Revoked)!);
            }
            entry = cache.Add(token);
        }
        else if (!RevocationCheck.TryDefer(Context, store, cache, hash)
            && TokenCache.Refusal(await TokenCache.CheckAsync(store, hash, Context.RequestAborted)) is { } refusal)
        {
            cache.Forget(hash);
            return Fail(refusal);
        }
        if (entry.IsExpired(clock.GetUtcNow().UtcDateTime))
        {
            return Fail("The token has expired.");
        }

        Context.Features.Set(entry.Caller);
        return AuthenticateResult.Success(new AuthenticationTicket(entry.NewPrincipal(), SchemeName));
    }

    private AuthenticateResult Fail(string reason)
    {
        Context.Items[FailureKey] = reason;
        return AuthenticateResult.Fail(reason);
    }

    /// <summary>The 401 of a token refused after authentication (<see cref="RevocationCheck"/>), the same as one refused here.</summary>
    public static ChallengeHttpResult Challenge(HttpContext http, string reason)
    {
        http.Items[FailureKey] = reason;
        return TypedResults.Challenge();
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var reason = Context.Items[FailureKey] as string;
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = reason is null
            ? "Bearer realm=\"deviceops\""
            : $"Bearer realm=\"deviceops\", error=\"invalid_token\", error_description=\"{reason}\"";
        var problem = Problems.Create(401, reason is null ? "unauthorized" : "invalid_token", "Unauthorized",
            reason ?? "Send a bearer token in the Authorization header.");
        await problems.WriteAsync(new ProblemDetailsContext { HttpContext = Context, ProblemDetails = problem });
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        var needed = Context.GetEndpoint()?.Metadata.GetMetadata<ScopeRequirement>()?.Scope;
        Response.Headers.WWWAuthenticate = needed is null
            ? "Bearer realm=\"deviceops\", error=\"insufficient_scope\""
            : $"Bearer realm=\"deviceops\", error=\"insufficient_scope\", scope=\"{needed}\"";
        var detail = needed is null ? "The token lacks the scope this call needs."
            : Context.Caller().Has(needed) ? $"This call needs a '{needed}' token that is not limited to organizations."
            : $"The token lacks the scope '{needed}' this call needs.";
        var problem = Problems.Create(403, "insufficient_scope", "Forbidden", detail);
        await problems.WriteAsync(new ProblemDetailsContext { HttpContext = Context, ProblemDetails = problem });
    }
}

/// <summary>An endpoint's required scope; the token must hold it (or <c>admin</c>).</summary>
public sealed class ScopeRequirement(string scope)
{
    public string Scope { get; } = scope;
}

public static class AuthExtensions
{
    public static IServiceCollection AddDeviceOpsAuth(this IServiceCollection services)
    {
        // The core alone, not AddAuthentication: that also registers data protection, which only
        // cookies and antiforgery use, and whose hosted service builds an XML key ring at start.
        services.AddAuthenticationCore(options => options.DefaultScheme = TokenAuthenticationHandler.SchemeName);
        services.AddWebEncoders();
        new AuthenticationBuilder(services)
            .AddScheme<AuthenticationSchemeOptions, TokenAuthenticationHandler>(TokenAuthenticationHandler.SchemeName, null);
        services.AddSingleton<TokenCache>();
        services.AddAuthorizationBuilder().AddPolicies();
        return services;
    }

    private static AuthorizationBuilder AddPolicies(this AuthorizationBuilder builder)
    {
        foreach (var scope in Scopes.All)
        {
            builder.AddPolicy(scope, policy => policy
                .RequireAuthenticatedUser()
                .RequireAssertion(context => Of(context).Has(scope)));
        }
        builder.AddPolicy(UnlimitedAdmin, policy => policy
            .RequireAuthenticatedUser()
            .RequireAssertion(context => Of(context) is { Organizations: null } caller && caller.Has(Scopes.Admin)));
        // The history belongs to devices and operations alike: either read scope may list it.
        builder.AddPolicy(AnyRead, policy => policy
            .RequireAuthenticatedUser()
            .RequireAssertion(context => Of(context) is var caller
                && (caller.Has(Scopes.DevicesRead) || caller.Has(Scopes.OperationsRead))));
        return builder;
    }

    public const string AnyRead = "devices:read or operations:read";

    /// <summary>
    /// Tokens and organizations are managed by an admin whose token is limited to no
    /// organization: an admin limited to one could otherwise mint itself a token for all.
    /// </summary>
    public const string UnlimitedAdmin = "admin without organization limits";

    /// <summary>Requires a scope and records it so a 403 can name it.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, string scope) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(scope).WithMetadata(new ScopeRequirement(scope));

    /// <summary>The caller the authentication handler made for this request (built once per token), or one made from the user.</summary>
    public static Caller Caller(this HttpContext context) => context.Features.Get<Caller>() ?? new(context.User);

    private static Caller Of(AuthorizationHandlerContext context) =>
        context.Resource is HttpContext http ? http.Caller() : new Caller(context.User);

    /// <summary>Declares the 401 and 403 problems every authorized group may answer, for the OpenAPI document.</summary>
    public static RouteGroupBuilder ProducesAuthProblems(this RouteGroupBuilder group) => group
        .WithMetadata(new ProducesResponseTypeMetadata(401, typeof(ProblemDetails), ["application/problem+json"]))
        .WithMetadata(new ProducesResponseTypeMetadata(403, typeof(ProblemDetails), ["application/problem+json"]));
}
