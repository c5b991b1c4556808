// The answers a PUT or PATCH of one operation can give, named once for the handler and the
// PostgreSQL groups that apply it (UpdateGroups).
global using UpdateResult = Microsoft.AspNetCore.Http.HttpResults.Results<
    Microsoft.AspNetCore.Http.HttpResults.Ok<DeviceOps.Operations.OperationResponse>,
    DeviceOps.Http.BodyProblem,
    DeviceOps.Http.ValidationFailed,
    DeviceOps.Http.NotFoundProblem,
    DeviceOps.Http.ConflictProblem,
    DeviceOps.Http.PreconditionFailedProblem>;
