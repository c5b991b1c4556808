using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Http;
using DeviceOps.Idempotency;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Organizations;

public sealed record OrganizationResponse(int Id, string Name, DateTime CreatedAt);

public sealed record OrganizationRequest(string Name);

public static class OrganizationsApi
{
    public const string Path = "/api/v1/organization";
    private static readonly HashSet<string> Writable = ["name"];
    private static readonly HashSet<string> ReadOnly = ["id", "created_at"];

    public static RouteGroupBuilder MapOrganizations(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Organizations");
        group.MapGet("/", List).RequireAuthorization(AuthExtensions.AnyRead).WithFields<OrganizationResponse>().WithSummary("List organizations");
        group.MapGet("/{id:int}/", Get).RequireAuthorization(AuthExtensions.AnyRead).WithSummary("Get one organization");
        group.MapPost("/", Create).RequireScope(Scopes.Admin).RequireAuthorization(AuthExtensions.UnlimitedAdmin)
            .Accepts<OrganizationRequest>("application/json").WithSummary("Create an organization");
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<Page<OrganizationResponse>>, ValidationFailed>> List(
        HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var list = new ListQuery(http.Request);
        var query = Visible(db, http.Caller());
        if (list.Text("name", 200) is { } name)
        {
            query = query.Where(o => o.Name == name);
        }
        query = list.Order(query, Orderings, "id");
        if (list.Errors.Any)
        {
            return Problems.Validation(list.Errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        return TypedResults.Ok(await list.PageAsync(query, ToResponse, cancellationToken));
    }

    public static async Task<Results<Ok<OrganizationResponse>, NotFoundProblem>> Get(
        int id, HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var organization = await Visible(db, http.Caller()).FirstOrDefaultAsync(o => o.Id == id, cancellationToken);
        return organization is null ? Problems.NotFoundResult($"Organization {id}") : TypedResults.Ok(ToResponse(organization));
    }

    public static async Task<Results<Created<OrganizationResponse>, BodyProblem, ValidationFailed, ConflictProblem>> Create(
        HttpContext http, StoreWriter writer, TimeProvider clock, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(http.Request, cancellationToken);
        if (problem is not null)
        {
            return new BodyProblem(problem);
        }
        var errors = new Errors();
        var fields = new FieldReader(body, Writable, ReadOnly, errors);
        var name = fields.Text("name", 200, required: true, nullable: false).Value;
        if (name is not null && Organization.IsDigitsOnly(name))
        {
            // Requests read digits as an id (Organization.TryParseId): a name of digits would
            // name another organization.
            errors.Add("name", "Cannot be only digits: where an organization is named, digits are read as its id.");
        }
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary());
        }
        return await writer.WriteAsync<Results<Created<OrganizationResponse>, BodyProblem, ValidationFailed, ConflictProblem>>(async (db, token) =>
        {
            if (await db.Organizations.AnyAsync(o => o.Name == name, token))
            {
                return (Problems.ConflictResult("duplicate", "Duplicate organization", $"An organization named \"{name}\" already exists."), false);
            }
            var organization = new Organization(name!, Rfc3339.Now(clock));
            db.Organizations.Add(organization);
            try
            {
                await db.SaveChangesAsync(token);
            }
            catch (DbUpdateException ex) when (Data.UniqueViolation.Is(ex))
            {
                return (Problems.ConflictResult("duplicate", "Duplicate organization", $"An organization named \"{name}\" already exists."), false);
            }
            var location = $"{Path}/{organization.Id}/";
            var response = ToResponse(organization);
            await IdempotencyKeys.RecordAsync(http, db, StatusCodes.Status201Created, response, location, clock, token);
            return (TypedResults.Created(location, response), true);
        }, cancellationToken);
    }

    private static IQueryable<Organization> Visible(DeviceOpsDb db, Caller caller)
    {
        var query = db.Organizations.AsNoTracking();
        return caller.Organizations is { } organizations ? query.Where(o => organizations.Contains(o.Id)) : query;
    }

    private static OrganizationResponse ToResponse(Organization organization) =>
        new(organization.Id, organization.Name, organization.CreatedAt);

    private static readonly Orderings<Organization, int> Orderings = new Orderings<Organization, int>(o => o.Id)
        .By("id", o => o.Id)
        .By("name", o => o.Name);
}
