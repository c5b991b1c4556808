using System.Globalization;
using DeviceOps.Data;
using DeviceOps.Http;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Auth;

/// <summary>
/// The server's admin command: <c>token create --user EMAIL --scopes a,b [--organization NAME]…
/// [--expires RFC3339] [--rate-limit N] [--description TEXT]</c>, <c>token list</c> and
/// <c>token revoke ID</c>, run against the configured store.
/// </summary>
public static class TokenCommand
{
    public const string Usage = """
        usage: DeviceOps.Server token create --user EMAIL --scopes SCOPE[,SCOPE…] [--organization NAME_OR_ID]… [--expires RFC3339] [--rate-limit N] [--description TEXT]
               DeviceOps.Server token list
               DeviceOps.Server token revoke ID
        scopes: devices:read devices:write operations:read operations:write operations:override admin
        """;

    public static async Task<int> RunAsync(IServiceProvider services, string[] args, TextWriter output, TextWriter error)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        var now = Rfc3339.Now(scope.ServiceProvider.GetRequiredService<TimeProvider>());
        var verb = args.ElementAtOrDefault(1);
        switch (verb)
        {
            case "create":
                return await CreateAsync(db, args[2..], now, output, error);
            case "list":
                foreach (var token in await db.Tokens.AsNoTracking().OrderBy(t => t.Id).ToListAsync())
                {
                    var state = token.RevokedAt is not null ? "revoked" : token.IsUsable(now) ? "active" : "expired";
                    await output.WriteLineAsync($"{token.Id}\t{token.Hint}…\t{token.User}\t{token.Scopes}\t{state}\t{token.Description}");
                }
                return 0;
            case "revoke" when args.Length == 3 && int.TryParse(args[2], CultureInfo.InvariantCulture, out var id):
                var found = await db.Tokens.FirstOrDefaultAsync(t => t.Id == id);
                if (found is null)
                {
                    await error.WriteLineAsync($"No token has the id {id}.");
                    return 1;
                }
                found.Revoke(now);
                await db.SaveChangesAsync();
                await output.WriteLineAsync($"Token {id} revoked.");
                return 0;
            default:
                await error.WriteLineAsync(Usage);
                return 2;
        }
    }

    private static async Task<int> CreateAsync(DeviceOpsDb db, string[] args, DateTime now, TextWriter output, TextWriter error)
    {
        string? user = null, description = null;
        var scopes = new List<string>();
        var organizations = new List<string>();
        DateTime? expires = null;
        int? rateLimit = null;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            if (value is null)
            {
                await error.WriteLineAsync($"{args[i]} needs a value.\n{Usage}");
                return 2;
            }
            switch (args[i])
            {
                case "--user": user = value; break;
                case "--scopes": scopes.AddRange(value.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries)); break;
                case "--organization": organizations.Add(value); break;
                case "--description": description = value; break;
                case "--expires" when FieldReader.TryParseTimestamp(value, out var parsed): expires = parsed; break;
                case "--rate-limit" when int.TryParse(value, CultureInfo.InvariantCulture, out var limit) && limit > 0: rateLimit = limit; break;
                default:
                    await error.WriteLineAsync($"Unknown or invalid option {args[i]} {value}.\n{Usage}");
                    return 2;
            }
            i++;
        }
        if (user is null)
        {
            await error.WriteLineAsync($"--user is required.\n{Usage}");
            return 2;
        }
        var result = await TokenIssuer.IssueAsync(db, user, scopes, organizations, expires, rateLimit, description, "token-command", now, CancellationToken.None);
        if (result.Errors.Any)
        {
            foreach (var (field, messages) in result.Errors.ToDictionary())
            {
                await error.WriteLineAsync($"{field}: {string.Join(" ", messages)}");
            }
            return 1;
        }
        await output.WriteLineAsync(result.Response!.Token);
        await error.WriteLineAsync($"Token {result.Token!.Id} for {user} ({string.Join(' ', scopes)}). The secret above is shown once and stored only as a hash.");
        return 0;
    }
}
