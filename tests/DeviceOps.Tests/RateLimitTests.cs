using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class RateLimitTests : OwnServerTests
{
    public RateLimitTests()
    {
        Factory.Settings["DeviceOps:RateLimit:AnonymousPerMinute"] = "3";
        Factory.Settings["DeviceOps:RateLimit:WindowSeconds"] = "2";
    }

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    [Fact]
    public async Task ATokenOverItsLimitGets429WithRetryAfterAndRateLimitHeaders()
    {
        using var client = Factory.WithToken(await Factory.TokenAsync("slow@example.com", ["devices:read"], rateLimitPerMinute: 3));

        var allowed = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            allowed.Add(await client.GetAsync(Api.Devices));
        }
        var limited = await client.GetAsync(Api.Devices);

        Assert.All(allowed, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(["2", "1", "0"], allowed.Select(r => Header(r, "RateLimit-Remaining")));
        Assert.All(allowed, r => Assert.Equal("3", Header(r, "RateLimit-Limit")));
        var problem = await limited.AssertProblemAsync(HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.Contains("3 requests", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        var retryAfter = int.Parse(Header(limited, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 2);
        Assert.Equal("3", Header(limited, "RateLimit-Limit"));
        Assert.Equal("0", Header(limited, "RateLimit-Remaining"));
        Assert.Equal(retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture), Header(limited, "RateLimit-Reset"));
    }

    [Fact]
    public async Task ABodyCostingMoreThanTheWholeLimitTakesTheWindowInsteadOfFailing()
    {
        using var client = Factory.WithToken(await Factory.TokenAsync("tiny@example.com", ["devices:write", "devices:read"], rateLimitPerMinute: 1));
        using var anonymous = Factory.Anonymous();
        // 70 KiB costs two permits, the token has one a window; a 500 before.
        var body = new JsonObject { ["device_id"] = "X", ["notes"] = new string('x', 70 * 1024) };
        var big = await client.PostJsonAsync(Api.Devices, body);
        await big.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.TooManyRequests, "rate_limited");

        // Without a token (three permits a window here): 4 MiB announced costs 64.
        using var huge = new HttpRequestMessage(HttpMethod.Post, Api.Organizations) { Content = Api.Json(new string(' ', 4 * 1024 * 1024) + "{}") };
        var refused = await anonymous.SendAsync(huge);
        Assert.True((int)refused.StatusCode is 401 or 413, $"got {(int)refused.StatusCode}");
        await (await anonymous.GetAsync(Api.Devices)).AssertProblemAsync(HttpStatusCode.TooManyRequests, "rate_limited");
    }

    [Fact]
    public async Task ALimitedTokenRecoversAfterTheWindow()
    {
        using var client = Factory.WithToken(await Factory.TokenAsync("burst@example.com", ["devices:read"], rateLimitPerMinute: 1));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Api.Devices)).StatusCode);
        var limited = await client.GetAsync(Api.Devices);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);

        await Task.Delay(TimeSpan.FromSeconds(int.Parse(Header(limited, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture) + 0.5));

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Api.Devices)).StatusCode);
    }

    [Fact]
    public async Task OneTokensLimitDoesNotSlowAnother()
    {
        using var first = Factory.WithToken(await Factory.TokenAsync("first@example.com", ["devices:read"], rateLimitPerMinute: 1));
        using var second = Factory.WithToken(await Factory.TokenAsync("second@example.com", ["devices:read"], rateLimitPerMinute: 1));

        await first.GetAsync(Api.Devices);
        var limited = await first.GetAsync(Api.Devices);
        var other = await second.GetAsync(Api.Devices);

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task ABatchCostsOnePermitPerStarted64KiBNotOnePerItem()
    {
        using var admin = Factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        using var client = Factory.WithToken(await Factory.TokenAsync("bulk@example.com", ["operations:read", "operations:write"], rateLimitPerMinute: 3));
        var items = new JsonArray([.. Enumerable.Range(0, 300).Select(_ => (JsonNode)new JsonObject
        {
            ["device_id"] = code,
            ["operation_type"] = "inspection",
        })]);

        var batch = await client.PostAsync(Api.Operations, Api.Json(items));

        Assert.Equal(HttpStatusCode.Created, batch.StatusCode);
        Assert.Equal("2", Header(batch, "RateLimit-Remaining"));
        Assert.Equal(300, (await batch.BodyAsync())["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task CallsWithoutAValidTokenAreLimitedPerClientAddressAndHealthIsNot()
    {
        using var anonymous = Factory.Anonymous();

        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            answers.Add((await anonymous.GetAsync(Api.Devices)).StatusCode);
        }
        var health = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => anonymous.GetAsync("/healthz")));

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests], answers);
        Assert.All(health, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
    }
}
