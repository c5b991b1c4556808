using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Operations;

/// <summary>
/// Batches of operations: PUT and PATCH on the collection take an array of items with
/// <c>id</c>, POST takes an array of new operations. All or nothing, in one transaction; the
/// history entries of a batch share its <c>request_id</c>.
/// </summary>
public static class OperationsBatchApi
{
    public static RouteGroupBuilder MapOperationBatches(this RouteGroupBuilder group)
    {
        group.MapPut("/", BatchPut).RequireScope(Scopes.OperationsWrite)
            .Accepts<OperationRequest[]>("application/json")
            .WithSummary("Replace many operations at once (all or nothing)")
            .WithDescription("An array of up to 10,000 PUT bodies, each with its `id` and optionally its `version` (the ETag last seen). Any failing item fails the batch: 400 (or 412, 409) lists every failing item by index, and nothing is applied.");
        group.MapPatch("/", BatchPatch).RequireScope(Scopes.OperationsWrite)
            .Accepts<OperationRequest[]>("application/json")
            .WithSummary("Change many operations at once (all or nothing)");
        return group;
    }

    public static Task<Results<Ok<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ProblemResult>> BatchPut(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(WriteMode.Replace, http, writer, clock, cancellationToken);

    public static Task<Results<Ok<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ProblemResult>> BatchPatch(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(WriteMode.Patch, http, writer, clock, cancellationToken);

    private static async Task<Results<Ok<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ProblemResult>> UpdateAsync(
        WriteMode mode, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (inputs, problem) = await Batch.ReadUpdatesAsync(http.Request, (item, errors) =>
        {
            var input = OperationInput.Read(item, mode, errors, batchItem: true);
            return mode == WriteMode.Replace ? input.AsReplacement() : input;
        }, cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        var caller = http.Caller();
        var ids = inputs.Select(i => i.Id).Distinct().ToList();
        // Plain rows, not tracked entities: EF Core's change tracker and SaveChanges allocated some
        // 180 MB for a 10,000-item batch, rows about 47 MB (bench/ROUNDS.md, "The batch on rows").
        return await writer.WriteSqlAsync<Results<Ok<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ProblemResult>>(async (session, token) =>
        {
            var failures = new BatchFailures();
            var operations = await OperationRows.LoadManyForWriteAsync(session, ids, caller, token);
            // PostgreSQL: entries go in chunks, two statements each, their columns as arrays.
            var entries = session.IsPostgres ? new List<HistoryEntry>(AuditRows.ManyChunk) : null;

            for (var i = 0; i < inputs.Count; i++)
            {
                var (id, version, input) = inputs[i];
                if (!operations.TryGet(id, out var operation))
                {
                    failures.NotFound(i, id, "Operation");
                    continue;
                }
                if (version is not null && version != operation.ETag())
                {
                    failures.Stale(i, id);
                    continue;
                }
                var change = OperationsApi.NewChange(http, clock, input.Justification);
                OperationWrites.Update(operation, input, change);
                if (Check(failures, i, id, change) && !failures.Any)
                {
                    // Each item's history and events are written as it is applied rather than held
                    // for the whole batch (20,000 entries for 10,000 items); a failure further on
                    // rolls them back with everything else.
                    if (entries is null)
                    {
                        await AuditRows.QueueAsync(session, change.Entries, token);
                    }
                    else
                    {
                        entries.AddRange(change.Entries);
                        if (entries.Count >= AuditRows.ManyChunk)
                        {
                            await AuditRows.QueueManyAsync(session, entries, token, answerIds: false);
                            entries.Clear();
                        }
                    }
                    change.Entries.Clear();
                }
            }
            if (failures.Any)
            {
                return (failures.ToProblem(), false);
            }
            if (entries is { Count: > 0 })
            {
                await AuditRows.QueueManyAsync(session, entries, token, answerIds: false);
            }
            await OperationRows.SaveManyAsync(session, operations, token);
            // Each item's answer is made as it is written out, not all 10,000 first.
            var response = new BatchResponse<OperationResponse>(inputs.Count,
                new ProjectedList<(int Id, string? Version, OperationInput Input), OperationResponse>(inputs, i => operations[i.Id].ToResponse(null)));
            await IdempotencyKeys.RecordAsync(http, session, StatusCodes.Status200OK, response, null, clock, token);
            return (TypedResults.Ok(response), true);
        }, cancellationToken, inputs.Count);
    }

    /// <summary>POST with an array: opens many operations at once, all or nothing.</summary>
    internal static async Task<Results<Created<OperationResponse>, Created<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>> CreateAsync(
        IReadOnlyList<JsonElement> items, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var failures = new BatchFailures();
        var inputs = new OperationInput[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var errors = new Errors();
            inputs[i] = OperationInput.Read(items[i], WriteMode.Create, errors);
            if (errors.Any)
            {
                failures.Invalid(i, null, errors);
            }
        }
        if (failures.Any)
        {
            return failures.ToProblem();
        }

        var caller = http.Caller();
        var codes = inputs.Select(i => i.DeviceId.Value!).Distinct().ToList();
        return await writer.WriteAsync<Results<Created<OperationResponse>, Created<BatchResponse<OperationResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>>(async (db, token) =>
        {
            var deviceIds = await db.Devices.Where(d => codes.Contains(d.DeviceCode)).Select(d => d.Id).ToListAsync(token);
            await db.LockDevicesAsync(deviceIds, token);
            var devices = await DevicesApi.Visible(db.Devices, caller).Where(d => codes.Contains(d.DeviceCode))
                .ToDictionaryAsync(d => d.DeviceCode, token);

            var entries = new List<HistoryEntry>();
            var operations = new DeviceOperation[inputs.Length];
            for (var i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i];
                if (!devices.TryGetValue(input.DeviceId.Value!, out var device))
                {
                    var errors = new Errors();
                    errors.Add("device_id", $"No device has the id \"{input.DeviceId.Value}\".");
                    failures.Invalid(i, null, errors);
                    continue;
                }
                var change = OperationsApi.NewChange(http, clock, input.Justification);
                operations[i] = OperationWrites.Open(device, input, change);
                Collect(failures, i, null, change, entries);
            }
            if (failures.Any)
            {
                return (failures.ToProblem(), false);
            }

            db.Operations.AddRange(operations);
            db.Record(entries);
            await db.SaveChangesAsync(token);
            var response = new BatchResponse<OperationResponse>(operations.Length, [.. operations.Select(o => o.ToResponse(null))]);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, response, null, clock, token);
            return (TypedResults.Created((string?)null, response), true);
        }, cancellationToken, inputs.Length);
    }

    /// <summary>Files an item's outcome: its history entries, or why it failed.</summary>
    internal static void Collect(BatchFailures failures, int index, int? id, ChangeContext change, List<HistoryEntry> entries)
    {
        if (Check(failures, index, id, change))
        {
            entries.AddRange(change.Entries);
        }
    }

    /// <summary>Files why an item failed, if it did; true when it did not.</summary>
    private static bool Check(BatchFailures failures, int index, int? id, ChangeContext change)
    {
        if (change.Errors.Any)
        {
            failures.Invalid(index, id, change.Errors);
            return false;
        }
        if (change.Conflict is { } conflict)
        {
            failures.Refused(index, id, conflict);
            return false;
        }
        return true;
    }
}
