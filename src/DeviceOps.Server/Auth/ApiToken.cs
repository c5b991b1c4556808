using System.Security.Cryptography;
using System.Text;

namespace DeviceOps.Auth;

public static class Scopes
{
    public const string DevicesRead = "devices:read";
    public const string DevicesWrite = "devices:write";
    public const string OperationsRead = "operations:read";
    public const string OperationsWrite = "operations:write";
    public const string OperationsOverride = "operations:override";
    public const string Admin = "admin";

    public static readonly string[] All = [DevicesRead, DevicesWrite, OperationsRead, OperationsWrite, OperationsOverride, Admin];
}

/// <summary>
/// A bearer token. Only the SHA-256 of its secret is stored: the secret is 256 random bits, so
/// a slow password hash would add latency to every request without adding safety.
/// </summary>
public sealed class ApiToken
{
    public const string SecretPrefix = "dop_";

    private ApiToken()
    {
    }

    public int Id { get; private set; }
    public string User { get; private set; } = "";
    public string SecretHash { get; private set; } = "";

    /// <summary>The first characters of the secret, so a person can tell tokens apart in a list.</summary>
    public string Hint { get; private set; } = "";

    /// <summary>Space-separated scopes.</summary>
    public string Scopes { get; private set; } = "";

    /// <summary>Comma-separated organization ids the token is limited to; empty means all.</summary>
    public string OrganizationIds { get; private set; } = "";

    public DateTime? ExpiresAt { get; private set; }
    public DateTime? RevokedAt { get; private set; }
    public int? RateLimitPerMinute { get; private set; }
    public string? Description { get; private set; }
    public DateTime CreatedAt { get; private set; }
    public string CreatedBy { get; private set; } = "";

    public IReadOnlyList<string> ScopeList => Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    public IReadOnlyList<int> OrganizationIdList =>
        [.. OrganizationIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];

    /// <summary>Makes a token and returns it with its secret, which is never stored.</summary>
    public static (ApiToken Token, string Secret) Issue(string user, IEnumerable<string> scopes, IEnumerable<int> organizationIds,
        DateTime? expiresAt, int? rateLimitPerMinute, string? description, string createdBy, DateTime now, string? secret = null)
    {
        secret ??= SecretPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var token = new ApiToken
        {
            User = user,
            SecretHash = Hash(secret),
            // A chosen secret (the bootstrap token's) shows nothing of itself.
            Hint = secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[..8] : "(chosen)",
            Scopes = string.Join(' ', scopes.Distinct()),
            OrganizationIds = string.Join(',', organizationIds.Distinct().Order()),
            ExpiresAt = expiresAt,
            RateLimitPerMinute = rateLimitPerMinute,
            Description = description,
            CreatedAt = now,
            CreatedBy = createdBy,
        };
        return (token, secret);
    }

    public void Revoke(DateTime now) => RevokedAt ??= now;

    public bool IsUsable(DateTime now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);

    public static string Hash(string secret) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
