namespace DeviceOps.Idempotency;

/// <summary>
/// The first response to a request made with an <c>Idempotency-Key</c>, stored in the same
/// transaction as the change it reports, so a retry can never apply the change twice.
/// </summary>
public sealed class IdempotencyRecord
{
    private IdempotencyRecord()
    {
    }

    public IdempotencyRecord(int tokenId, string key, string requestHash, int statusCode, string body, string? location,
        string? etag, DateTime createdAt)
    {
        TokenId = tokenId;
        Key = key;
        RequestHash = requestHash;
        StatusCode = statusCode;
        Body = body;
        Location = location;
        ETag = etag;
        CreatedAt = createdAt;
    }

    public long Id { get; private set; }

    /// <summary>Keys are scoped to the token that sent them: two clients may pick the same key.</summary>
    public int TokenId { get; private set; }

    public string Key { get; private set; } = "";

    /// <summary>SHA-256 of method, path and body: the same key with another request is refused.</summary>
    public string RequestHash { get; private set; } = "";

    public int StatusCode { get; private set; }
    public string Body { get; private set; } = "";
    public string? Location { get; private set; }
    public string? ETag { get; private set; }
    public DateTime CreatedAt { get; private set; }
}
