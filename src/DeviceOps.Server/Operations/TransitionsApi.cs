using DeviceOps.Auth;
using DeviceOps.Devices;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace DeviceOps.Operations;

/// <summary>One status machine: the field it governs, its statuses, and where each may move in one request.</summary>
public sealed record StatusMachine(string Field, IReadOnlyList<string> Statuses, IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedNextStates);

/// <param name="OverrideScope">The scope that, with a non-empty justification, may force a move the rules refuse.</param>
public sealed record TransitionsResponse(StatusMachine Operation, StatusMachine Device, string OverrideScope);

/// <summary>
/// The status rules as data, read from the same tables the writes check, so a client (the web
/// console) offers exactly the moves the server allows instead of keeping a copy of its own.
/// </summary>
public static class TransitionsApi
{
    public const string Path = "/api/v1/transitions";

    public static RouteHandlerBuilder MapTransitions(this IEndpointRouteBuilder app) =>
        app.MapGet(Path + "/", Get).WithTags("Device operations").RequireAuthorization()
            .WithSummary("The allowed status moves of operations and devices")
            .WithDescription("For each status, the statuses an operation (`status`) or a device (`operational_status`) may move to in one request; any other move is a 409 `invalid_transition` unless the token has `operations:override` and the request carries a `justification`. Needs any valid token.")
            .WithMetadata(new ProducesResponseTypeMetadata(401, typeof(ProblemDetails), ["application/problem+json"]));

    public static Ok<TransitionsResponse> Get() => TypedResults.Ok(Rules);

    public static readonly TransitionsResponse Rules = new(
        new StatusMachine("status", OperationStatus.All, OperationStatus.All.ToDictionary(s => s, OperationStatus.AllowedFrom)),
        new StatusMachine("operational_status", DeviceStatus.All, DeviceStatus.All.ToDictionary(s => s, DeviceStatus.AllowedFrom)),
        Scopes.OperationsOverride);
}
