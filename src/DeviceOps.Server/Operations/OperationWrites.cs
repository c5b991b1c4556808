using DeviceOps.Devices;
using DeviceOps.History;

namespace DeviceOps.Operations;

/// <summary>
/// What a request does to an operation and its device, apart from HTTP: one request or one
/// item of a batch. Rule violations are collected in the change context, never thrown.
/// </summary>
public static class OperationWrites
{
    public static DeviceOperation Open(Device device, OperationInput input, ChangeContext change)
    {
        var operation = DeviceOperation.Open(device, input.OperationType.Value!, input.Status.Value ?? OperationStatus.Pending, change);
        operation.Describe(default, input.OperatorId, input.Description, input.Notes, input.StartedAt, input.CompletedAt, change);
        operation.Stamp(change);
        input.Effects.ApplyTo(device, change, operation, mergeConfiguration: true);
        operation.Validate(change);
        return operation;
    }

    public static void Update(DeviceOperation operation, OperationInput input, ChangeContext change)
    {
        if (input.DeviceId is { IsSet: true, Value: { } code } && code != operation.Device.DeviceCode)
        {
            change.Errors.Add("device_id", $"An operation never moves to another device; this one belongs to \"{operation.Device.DeviceCode}\".");
            return;
        }
        operation.Describe(input.OperationType, input.OperatorId, input.Description, input.Notes, input.StartedAt, input.CompletedAt, change);
        if (input.Status is { IsSet: true, Value: { } status })
        {
            operation.ChangeStatus(status, change, completionGiven: input.CompletedAt.IsSet);
        }
        input.Effects.ApplyTo(operation.Device, change, operation, mergeConfiguration: true);
        operation.Validate(change);
    }
}
