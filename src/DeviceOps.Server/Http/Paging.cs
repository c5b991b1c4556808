using System.Globalization;
using System.Linq.Expressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Http;

/// <summary>A page of a list, in Django REST Framework's limit/offset shape.</summary>
public sealed record Page<T>(int Count, string? Next, string? Previous, IReadOnlyList<T> Results);

/// <summary>Reads <c>limit</c>, <c>offset</c>, <c>ordering</c> and filters from a query string, collecting every bad parameter.</summary>
public sealed class ListQuery
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 1000;

    public ListQuery(HttpRequest request)
    {
        Request = request;
        // Read now, so a bad limit or offset is reported with the filters' errors.
        Limit = Count(request, Errors, "limit", DefaultLimit, 1, MaxLimit);
        Offset = Count(request, Errors, "offset", 0, 0, int.MaxValue);
    }

    public Errors Errors { get; } = new();
    public HttpRequest Request { get; }
    public int Limit { get; }
    public int Offset { get; }

    public string? Text(string name, int maxLength = 254)
    {
        var value = Request.Query[name].ToString();
        if (value.Length == 0)
        {
            return null;
        }
        if (value.Length > maxLength)
        {
            Errors.Add(name, $"Must be at most {maxLength} characters long.");
            return null;
        }
        if (FieldReader.HasNul(value))
        {
            Errors.Add(name, FieldReader.NulMessage);
            return null;
        }
        return value;
    }

    public string? Choice(string name, IReadOnlyCollection<string> choices)
    {
        var value = Text(name);
        if (value is not null && !choices.Contains(value))
        {
            Errors.Add(name, $"\"{value}\" is not a valid choice; use one of: {string.Join(", ", choices)}.");
            return null;
        }
        return value;
    }

    public DateTime? Timestamp(string name)
    {
        var value = Text(name, 40);
        if (value is null)
        {
            return null;
        }
        if (FieldReader.TryParseTimestamp(value, out var parsed))
        {
            return parsed;
        }
        Errors.Add(name, "Must be an RFC 3339 timestamp with a time zone, e.g. 2024-01-15T14:30:00Z.");
        return null;
    }

    public int? OptionalInt(string name)
    {
        var value = Text(name, 12);
        if (value is null)
        {
            return null;
        }
        if (FieldReader.IsDigits(value) && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return number;
        }
        Errors.Add(name, "Must be an integer.");
        return null;
    }

    /// <summary>A count such as <c>limit</c> or <c>offset</c>, from <paramref name="min"/> to <paramref name="max"/>; absent is <paramref name="fallback"/>, anything else an error.</summary>
    public static int Count(HttpRequest request, Errors errors, string name, int fallback, int min, int max)
    {
        var value = request.Query[name].ToString();
        if (value.Length == 0)
        {
            return fallback;
        }
        if (!FieldReader.IsDigits(value) || !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            || number < min || number > max)
        {
            errors.Add(name, max == int.MaxValue ? $"Must be an integer of at least {min}." : $"Must be an integer from {min} to {max}.");
            return fallback;
        }
        return number;
    }

    /// <summary>
    /// Applies <c>?ordering=field</c> or <c>-field</c> from the allowed keys, then the id as a
    /// tie-breaker so pages never overlap or skip rows.
    /// </summary>
    public IQueryable<T> Order<T, TId>(IQueryable<T> query, Orderings<T, TId> orderings, string fallback)
    {
        var ordering = Text("ordering", 64) ?? fallback;
        var descending = ordering.StartsWith('-');
        var key = descending ? ordering[1..] : ordering;
        if (!orderings.TryGetValue(key, out var apply))
        {
            Errors.Add("ordering", $"\"{ordering}\" is not a valid ordering; use one of: {string.Join(", ", orderings.Keys)} (prefix '-' for descending).");
            return query;
        }
        return apply(query, descending);
    }

    public async Task<Page<TOut>> PageAsync<T, TOut>(IQueryable<T> query, Func<T, TOut> map, CancellationToken cancellationToken)
    {
        var limit = Limit;
        var offset = Offset;
        var count = await query.CountAsync(cancellationToken);
        var rows = await query.Skip(offset).Take(limit).ToListAsync(cancellationToken);
        return new Page<TOut>(
            count,
            offset + limit < count ? Link(offset + limit, limit) : null,
            offset > 0 ? Link(Math.Max(0, offset - limit), limit) : null,
            [.. rows.Select(map)]);
    }

    private string Link(int offset, int limit)
    {
        var query = QueryHelpers.ParseQuery(Request.QueryString.Value)
            .Where(p => p.Key is not ("offset" or "limit"))
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)))
            .Append(new("limit", limit.ToString(CultureInfo.InvariantCulture)));
        if (offset > 0)
        {
            query = query.Append(new("offset", offset.ToString(CultureInfo.InvariantCulture)));
        }
        return QueryHelpers.AddQueryString(Links.ToPath(Request), query);
    }
}

/// <summary>The orderings a list accepts, each with the id as tie-breaker.</summary>
public sealed class Orderings<T, TId>(Expression<Func<T, TId>> id) : Dictionary<string, Func<IQueryable<T>, bool, IQueryable<T>>>
{
    public Orderings<T, TId> By<TKey>(string name, Expression<Func<T, TKey>> key)
    {
        this[name] = (query, descending) => descending
            ? query.OrderByDescending(key).ThenByDescending(id)
            : query.OrderBy(key).ThenBy(id);
        return this;
    }
}
