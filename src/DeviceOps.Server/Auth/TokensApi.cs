using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.Data;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using DeviceOps.Organizations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Auth;

public sealed record TokenResponse(
    int Id,
    string User,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Organizations,
    DateTime? ExpiresAt,
    int? RateLimitPerMinute,
    string? Description,
    DateTime CreatedAt,
    string CreatedBy,
    string Hint,
    DateTime? RevokedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Token);

/// <summary>The body of POST /api/v1/token/, as the OpenAPI document shows it.</summary>
public sealed record TokenRequest(
    [property: JsonPropertyName("user")] string User,
    [property: JsonPropertyName("scopes")] string[] Scopes,
    [property: JsonPropertyName("organizations")] object[]? Organizations = null,
    [property: JsonPropertyName("expires_at")] DateTime? ExpiresAt = null,
    [property: JsonPropertyName("rate_limit_per_minute")] int? RateLimitPerMinute = null,
    [property: JsonPropertyName("description")] string? Description = null);

public static class TokensApi
{
    public const string Path = "/api/v1/token";
    private static readonly HashSet<string> Writable = ["user", "scopes", "organizations", "expires_at", "rate_limit_per_minute", "description"];
    private static readonly HashSet<string> ReadOnly = ["id", "created_at", "created_by", "hint", "revoked_at", "token"];

    public static RouteGroupBuilder MapTokens(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Tokens").RequireScope(Scopes.Admin).RequireAuthorization(AuthExtensions.UnlimitedAdmin);
        group.MapGet("/", List).WithFields<TokenResponse>().WithSummary("List tokens (never their secrets)");
        group.MapPost("/", Create).Accepts<TokenRequest>("application/json")
            .WithSummary("Create a token; its secret is in this response only");
        group.MapDelete("/{id:int}/", Revoke).WithSummary("Revoke a token, effective at once");
        group.ProducesAuthProblems();

        // Any valid token may ask who it is: the web console signs in with it and shows only what
        // its scopes allow.
        app.MapGet(Path + "/me/", Me).WithTags("Tokens").RequireAuthorization()
            .WithSummary("The calling token: its user, scopes, organizations and expiry (never its secret)")
            .WithMetadata(new ProducesResponseTypeMetadata(401, typeof(ProblemDetails), ["application/problem+json"]));
        return group;
    }

    public static async Task<Results<Ok<TokenResponse>, NotFoundProblem>> Me(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var id = http.Caller().TokenId ?? 0;
        var token = await db.Tokens.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, cancellationToken);
        if (token is null)
        {
            // Authenticated a moment ago; only a concurrent deletion of the row could bring us here.
            return Problems.NotFoundResult("The calling token");
        }
        var organizations = token.OrganizationIdList;
        var names = await db.Organizations.AsNoTracking().Where(o => organizations.Contains(o.Id))
            .ToDictionaryAsync(o => o.Id, o => o.Name, cancellationToken);
        return TypedResults.Ok(token.ToResponse(names, null));
    }

    public static async Task<Results<Ok<Page<TokenResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = db.Tokens.AsNoTracking();
        if (list.Text("user") is { } user)
        {
            query = query.Where(t => t.User == user);
        }
        query = list.Order(query, Orderings, "id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        var names = await db.Organizations.AsNoTracking().ToDictionaryAsync(o => o.Id, o => o.Name, cancellationToken);
        return TypedResults.Ok(await list.PageAsync(query, t => t.ToResponse(names, null), cancellationToken));
    }

    public static async Task<Results<Created<TokenResponse>, BodyProblem, ValidationFailed>> Create(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var errors = new Errors();
        var fields = new FieldReader(body, Writable, ReadOnly, errors);
        var user = fields.Email("user", required: true, nullable: false).Value;
        var scopes = StringList(fields, "scopes", required: true);
        var organizations = StringList(fields, "organizations", required: false);
        var expiresAt = fields.Timestamp("expires_at").Value;
        var rateLimit = fields.Number("rate_limit_per_minute", 1, 1_000_000).Value;
        var description = fields.Text("description", 500).Value;
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary());
        }

        return await writer.WriteAsync<Results<Created<TokenResponse>, BodyProblem, ValidationFailed>>(async (db, token) =>
        {
            var result = await TokenIssuer.IssueAsync(db, user!, scopes, organizations, expiresAt, rateLimit, description,
                http.Caller().Email, Rfc3339.Now(clock), token);
            if (result.Errors.Any)
            {
                return (Problems.Validation(result.Errors.ToDictionary()), false);
            }
            var location = $"{Path}/{result.Token!.Id}/";
            // A retried token creation answers the same token instead of minting a second one, but
            // without its secret: that is shown once and stored only as a hash, the stored answer
            // included.
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, result.Response! with { Token = null }, location, clock, token);
            return (TypedResults.Created(location, result.Response), true);
        }, cancellationToken);
    }

    public static async Task<Results<NoContent, NotFoundProblem>> Revoke(
        int id, StoreWriter writer, TokenCache cache, TimeProvider clock, CancellationToken cancellationToken)
    {
        var result = await writer.WriteAsync<Results<NoContent, NotFoundProblem>>(async (db, token) =>
        {
            var found = await db.Tokens.FirstOrDefaultAsync(t => t.Id == id, token);
            if (found is null)
            {
                return (Problems.NotFoundResult($"Token {id}"), false);
            }
            found.Revoke(Rfc3339.Now(clock));
            await db.SaveChangesAsync(token);
            return (TypedResults.NoContent(), true);
        }, cancellationToken);
        cache.Forget(id);
        return result;
    }

    public static TokenResponse ToResponse(this ApiToken token, IReadOnlyDictionary<int, string> organizationNames, string? secret) =>
        new(token.Id, token.User, token.ScopeList,
            [.. token.OrganizationIdList.Select(id => organizationNames.TryGetValue(id, out var name) ? name : id.ToString(CultureInfo.InvariantCulture))],
            token.ExpiresAt, token.RateLimitPerMinute, token.Description, token.CreatedAt, token.CreatedBy, token.Hint,
            token.RevokedAt, secret);

    /// <summary>Reads an array of strings or numbers (organizations may be named or numbered) as strings.</summary>
    private static List<string> StringList(FieldReader fields, string name, bool required)
    {
        var element = fields.Element(name, required, nullable: !required);
        if (!element.IsSet || element.Value.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        if (element.Value.ValueKind != JsonValueKind.Array)
        {
            fields.Fail(name, "Must be an array.");
            return [];
        }
        var items = new List<string>();
        foreach (var item in element.Value.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 and <= 200 } text && !FieldReader.HasNul(text))
            {
                items.Add(text);
            }
            else if (item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out var number))
            {
                items.Add(number.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                fields.Fail(name, "Items must be non-empty strings or integers.");
                return [];
            }
        }
        return items;
    }

    private static readonly Orderings<ApiToken, int> Orderings = new Orderings<ApiToken, int>(t => t.Id)
        .By("id", t => t.Id)
        .By("created_at", t => t.CreatedAt);
}

/// <summary>Makes tokens for the API and for the server's <c>token create</c> command alike.</summary>
public static class TokenIssuer
{
    public sealed record Result(ApiToken? Token, TokenResponse? Response, Errors Errors);

    public static async Task<Result> IssueAsync(DeviceOpsDb db, string user, IReadOnlyList<string> scopes,
        IReadOnlyList<string> organizations, DateTime? expiresAt, int? rateLimitPerMinute, string? description,
        string createdBy, DateTime now, CancellationToken cancellationToken, string? secret = null)
    {
        var errors = new Errors();
        if (!FieldReader.IsEmail(user))
        {
            errors.Add("user", "Must be a valid e-mail address.");
        }
        if (scopes.Count == 0)
        {
            errors.Add("scopes", "Give at least one scope.");
        }
        foreach (var scope in scopes.Where(s => !Scopes.All.Contains(s)))
        {
            errors.Add("scopes", $"\"{scope}\" is not a scope; use: {string.Join(", ", Scopes.All)}.");
        }
        if (expiresAt is { } expiry && expiry <= now)
        {
            errors.Add("expires_at", "Must be in the future.");
        }

        var ids = new List<int>();
        var names = new Dictionary<int, string>();
        foreach (var given in organizations)
        {
            var organization = Organization.TryParseId(given, out var id)
                ? await db.Organizations.FirstOrDefaultAsync(o => o.Id == id, cancellationToken)
                : await db.Organizations.FirstOrDefaultAsync(o => o.Name == given, cancellationToken);
            if (organization is null)
            {
                errors.Add("organizations", $"No organization has the name or id \"{given}\".");
                continue;
            }
            ids.Add(organization.Id);
            names[organization.Id] = organization.Name;
        }
        if (errors.Any)
        {
            return new(null, null, errors);
        }

        var (token, issued) = ApiToken.Issue(user, scopes, ids, expiresAt, rateLimitPerMinute, description, createdBy, now, secret);
        db.Tokens.Add(token);
        await db.SaveChangesAsync(cancellationToken);
        return new(token, token.ToResponse(names, issued), errors);
    }

    /// <summary>
    /// Ensures the admin token named by <c>DEVICEOPS_BOOTSTRAP_TOKEN</c> exists. A revoked one
    /// stays revoked: a revocation is an admin's decision the environment must not undo.
    /// </summary>
    public static async Task EnsureBootstrapAsync(DeviceOpsDb db, string secret, DateTime now, ILogger logger, CancellationToken cancellationToken)
    {
        if (secret.Length < 16)
        {
            throw new InvalidOperationException("DEVICEOPS_BOOTSTRAP_TOKEN must be at least 16 characters long.");
        }
        var hash = ApiToken.Hash(secret);
        var existing = await db.Tokens.AsNoTracking().FirstOrDefaultAsync(t => t.SecretHash == hash, cancellationToken);
        if (existing is not null)
        {
            if (existing.RevokedAt is not null)
            {
                logger.LogWarning("The bootstrap token {TokenId} was revoked; it stays revoked.", existing.Id);
            }
            return;
        }
        var issued = await IssueAsync(db, "admin@localhost", [Scopes.Admin], [], null, null, "bootstrap (DEVICEOPS_BOOTSTRAP_TOKEN)",
            "admin@localhost", now, cancellationToken, secret);
        if (issued.Errors.Any)
        {
            throw new InvalidOperationException("The bootstrap token could not be made: " +
                string.Join("; ", issued.Errors.ToDictionary().Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        }
    }
}
