using System.Globalization;
using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using DeviceOps.Operations;
using DeviceOps.Organizations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Devices;

/// <summary>PUT and PATCH on the device collection: many devices at once, all or nothing.</summary>
public static class DevicesBatchApi
{
    public static RouteGroupBuilder MapDeviceBatches(this RouteGroupBuilder group)
    {
        group.MapPut("/", BatchPut).RequireScope(Scopes.DevicesWrite)
            .Accepts<DeviceRequest[]>("application/json")
            .WithSummary("Replace many devices at once (all or nothing)")
            .WithDescription("An array of up to 10,000 PUT bodies, each with its `id` and optionally its `version` (the ETag last seen). Any failing item fails the batch: 400 (or 412, 409) lists every failing item by index, and nothing is applied.");
        group.MapPatch("/", BatchPatch).RequireScope(Scopes.DevicesWrite)
            .Accepts<DeviceRequest[]>("application/json")
            .WithSummary("Change many devices at once (all or nothing)");
        return group;
    }

    public static Task<Results<Ok<BatchResponse<DeviceResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>> BatchPut(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(WriteMode.Replace, http, writer, clock, cancellationToken);

    public static Task<Results<Ok<BatchResponse<DeviceResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>> BatchPatch(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken) =>
        UpdateAsync(WriteMode.Patch, http, writer, clock, cancellationToken);

    private static async Task<Results<Ok<BatchResponse<DeviceResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>> UpdateAsync(
        WriteMode mode, HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (inputs, problem) = await Batch.ReadUpdatesAsync(http.Request, (item, errors) =>
        {
            var input = DeviceInput.Read(item, mode, errors, batchItem: true);
            return mode == WriteMode.Replace ? input.AsReplacement() : input;
        }, cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        var caller = http.Caller();
        var ids = inputs.Select(i => i.Id).Distinct().ToList();
        return await writer.WriteAsync<Results<Ok<BatchResponse<DeviceResponse>>, BodyProblem, ValidationFailed, ConflictProblem, ProblemResult>>(async (db, token) =>
        {
            var failures = new BatchFailures();
            await db.LockDevicesAsync(ids, token);
            var devices = await DevicesApi.Visible(db.Devices, caller).Where(d => ids.Contains(d.Id)).ToDictionaryAsync(d => d.Id, token);
            var organizations = await db.Organizations.ToListAsync(token);
            var serials = inputs.Where(i => i.Input.SerialNumber.Value is not null).Select(i => i.Input.SerialNumber.Value!).Distinct().ToList();
            var serialOwners = await db.Devices.Where(d => serials.Contains(d.SerialNumber))
                .ToDictionaryAsync(d => d.SerialNumber, d => d.Id, token);

            var entries = new List<HistoryEntry>();
            for (var i = 0; i < inputs.Count; i++)
            {
                var (id, version, input) = inputs[i];
                if (!devices.TryGetValue(id, out var device))
                {
                    failures.NotFound(i, id, "Device");
                    continue;
                }
                if (version is not null && version != device.ETag())
                {
                    failures.Stale(i, id);
                    continue;
                }
                var errors = new Errors();
                Organization? organization = null;
                if (input.Organization.IsSet)
                {
                    organization = Find(organizations, input.Organization.Value, caller);
                    if (organization is null)
                    {
                        errors.Add("organization", "No organization has this name or id.");
                    }
                }
                if (input.SerialNumber.Value is { } serial)
                {
                    // The serial is free, or already this device's, or taken in this batch by no other.
                    if (serialOwners.TryGetValue(serial, out var owner) && owner != id)
                    {
                        errors.Add("serial_number", $"Another device has the serial number \"{serial}\".");
                    }
                    else
                    {
                        serialOwners[serial] = id;
                    }
                }
                if (errors.Any)
                {
                    failures.Invalid(i, id, errors);
                    continue;
                }
                var change = OperationsApi.NewChange(http, clock, input.Justification);
                DevicesApi.Update(device, input, organization, mode, change);
                OperationsBatchApi.Collect(failures, i, id, change, entries);
            }
            if (failures.Any)
            {
                return (failures.ToProblem(), false);
            }
            if (await DevicesApi.SaveAsync(db, token) is { } conflict)
            {
                return (conflict, false);
            }
            await db.RecordBulkAsync(entries, token);
            var response = new BatchResponse<DeviceResponse>(inputs.Count, [.. inputs.Select(i => devices[i.Id].ToResponse(null))]);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status200OK, response, null, clock, token);
            return (TypedResults.Ok(response), true);
        }, cancellationToken, inputs.Count);
    }

    private static Organization? Find(List<Organization> organizations, JsonElement value, Caller caller)
    {
        var found = DevicesApi.IsOrganizationId(value, out var id)
            ? organizations.FirstOrDefault(o => o.Id == id)
            : value.ValueKind == JsonValueKind.String ? organizations.FirstOrDefault(o => o.Name == value.GetString()) : null;
        return found is not null && caller.CanSee(found.Id) ? found : null;
    }
}
