using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.History;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace DeviceOps.Http;

/// <summary>The answer of a batch call: every item's result, in the order given.</summary>
public sealed record BatchResponse<T>(int Count, IReadOnlyList<T> Results);

/// <summary>
/// A read-only list whose items are made from another's as they are read, so a large answer is
/// written out without all of its items being held at once.
/// </summary>
public sealed class ProjectedList<TSource, T>(IReadOnlyList<TSource> source, Func<TSource, T> project) : IReadOnlyList<T>
{
    public T this[int index] => project(source[index]);

    public int Count => source.Count;

    public IEnumerator<T> GetEnumerator()
    {
        foreach (var item in source)
        {
            yield return project(item);
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>One item a batch could not apply, by its index in the request.</summary>
public sealed record FailedItem(
    int Index,
    int? Id,
    int Status,
    string Code,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, string[]>? Errors,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Field,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? From,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? To,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? AllowedNextStates);

public static class Batch
{
    /// <summary>
    /// Reads a batch body: a JSON array of 1 to <see cref="BodyLimits.MaxBatchItems"/> objects.
    /// </summary>
    public static (IReadOnlyList<JsonElement> Items, ProblemResult? Problem) Items(HttpRequest request, JsonElement body)
    {
        var limits = request.HttpContext.RequestServices.GetRequiredService<IOptions<BodyLimits>>().Value;
        if (body.ValueKind != JsonValueKind.Array)
        {
            return ([], Problems.Validation("", "The body of a batch call must be a JSON array of objects."));
        }
        var count = body.GetArrayLength();
        if (count == 0)
        {
            return ([], Problems.Validation("", "The batch is empty."));
        }
        if (count > limits.MaxBatchItems)
        {
            return ([], new StatusProblem(Problems.Create(413, "batch_too_large", "Batch too large",
                $"A batch may carry at most {limits.MaxBatchItems} items; this one has {count}. Split it.")));
        }
        if (count >= History.LatestHistory.ClearingBatch)
        {
            request.HttpContext.RequestServices.GetRequiredService<History.LatestHistory>().Clear();
        }
        var errors = new Errors();
        var items = new List<JsonElement>(count);
        var index = 0;
        foreach (var item in body.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"[{index}]", "Must be an object.");
            }
            items.Add(item);
            index++;
        }
        return errors.Any ? ([], Problems.Validation(errors.ToDictionary())) : (items, null);
    }

    /// <summary>
    /// Reads the body of a batch PUT or PATCH: every item's <c>id</c>, <c>version</c> and input, or
    /// the problem that answers the whole call — the body's own, or every invalid item by index.
    /// </summary>
    public static async Task<(IReadOnlyList<(int Id, string? Version, T Input)> Items, ProblemResult? Problem)> ReadUpdatesAsync<T>(
        HttpRequest request, Func<JsonElement, Errors, T> read, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadAsync(request, batch: true, cancellationToken);
        if (problem is not null)
        {
            return ([], new BodyProblem(problem));
        }
        var (items, itemsProblem) = Items(request, body);
        if (itemsProblem is not null)
        {
            return ([], itemsProblem);
        }
        var failures = new BatchFailures();
        var inputs = new (int Id, string? Version, T Input)[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var errors = new Errors();
            var (id, version) = Identity(items[i], errors);
            var input = read(items[i], errors);
            if (errors.Any)
            {
                failures.Invalid(i, id, errors);
                continue;
            }
            inputs[i] = (id!.Value, version, input);
        }
        return failures.Any ? ([], failures.ToProblem()) : (inputs, null);
    }

    /// <summary>
    /// Reads the <c>id</c> of a batch item, which names what it changes (required), and the
    /// optional <c>version</c>, the item's If-Match: the ETag its client last saw.
    /// </summary>
    public static (int? Id, string? Version) Identity(JsonElement item, Errors errors)
    {
        int? id = null;
        if (!item.TryGetProperty("id", out var idElement))
        {
            errors.Add("id", "This field is required in a batch item.");
        }
        else if (idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt32(out var value) || value <= 0)
        {
            errors.Add("id", "Must be a positive integer.");
        }
        else
        {
            id = value;
        }
        string? version = null;
        if (item.TryGetProperty("version", out var versionElement))
        {
            if (versionElement.ValueKind == JsonValueKind.String && versionElement.GetString() is { Length: > 0 and <= 100 } text)
            {
                version = text.StartsWith('"') ? text : $"\"{text}\"";
            }
            else
            {
                errors.Add("version", "Must be the ETag last seen, as a string.");
            }
        }
        return (id, version);
    }
}

/// <summary>
/// Every failing item of a batch, gathered before anything is saved, and the one problem that
/// reports them: 400 when any item is invalid or missing, else 412 when any is stale, else 409.
/// </summary>
public sealed class BatchFailures
{
    private readonly List<FailedItem> _items = [];
    private readonly Errors _errors = new();

    public bool Any => _items.Count > 0;

    public void Invalid(int index, int? id, Errors errors)
    {
        _errors.AddAll(errors, $"[{index}].");
        _items.Add(new(index, id, 400, Problems.ValidationFailed, errors.ToDictionary(), null, null, null, null));
    }

    public void NotFound(int index, int id, string what)
    {
        var errors = new Errors();
        errors.Add("id", $"{what} {id} does not exist.");
        _errors.AddAll(errors, $"[{index}].");
        _items.Add(new(index, id, 404, Problems.NotFound, errors.ToDictionary(), null, null, null, null));
    }

    public void Stale(int index, int id)
    {
        _items.Add(new(index, id, 412, Problems.PreconditionFailed, null, "version", null, null, null));
    }

    public void Refused(int index, int? id, TransitionConflict conflict)
    {
        _items.Add(new(index, id, 409, Problems.InvalidTransition, null, conflict.Field, conflict.From, conflict.To, conflict.Allowed));
    }

    public ProblemResult ToProblem()
    {
        var indexes = string.Join(", ", _items.Select(i => i.Index).Distinct());
        ProblemResult result;
        if (_items.Any(i => i.Status is 400 or 404))
        {
            result = Problems.Validation(_errors.ToDictionary(), $"Nothing was applied. Failing items (by index): {indexes}.");
        }
        else if (_items.Any(i => i.Status == 412))
        {
            result = new PreconditionFailedProblem(Problems.Create(412, Problems.PreconditionFailed, "Precondition failed",
                $"Nothing was applied: items {indexes} carry a version older than the current ETag."));
        }
        else
        {
            result = new ConflictProblem(Problems.Create(409, Problems.InvalidTransition, "Invalid status transition",
                $"Nothing was applied: items {indexes} ask for status moves the rules forbid."));
        }
        result.Value.Extensions["failed_items"] = _items;
        return result;
    }
}
