using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace DeviceOps.Tests;

/// <summary>
/// Every error is a problem body with its request id, whatever the client said it accepts: a
/// browser's <c>Accept: text/html</c> turned every error, a 401 included, into an empty 500.
/// </summary>
public sealed class ErrorAnswerTests(ErrorAnswerTests.Server factory) : IClassFixture<ErrorAnswerTests.Server>
{
    private const string FailingPath = "/test-only/failure";

    /// <summary>The server with one more route, behind every endpoint, that fails as a bug would.</summary>
    public sealed class Server : DeviceOpsFactory
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.ConfigureServices(services => services.AddSingleton<IStartupFilter, FailingRoute>());
        }
    }

    private sealed class FailingRoute : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            next(app);
            app.Map(FailingPath, failing => failing.Run(_ => throw new InvalidOperationException("internal detail: connection string here")));
        };
    }

    public static TheoryData<string?> Accepts => new()
    {
        null,
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "text/html",
        "application/xml",
        "text/event-stream",
    };

    private HttpClient Client(string? accept, bool authenticated = true)
    {
        var client = authenticated ? factory.Admin() : factory.Anonymous();
        if (accept is not null)
        {
            client.DefaultRequestHeaders.TryAddWithoutValidation("Accept", accept);
        }
        return client;
    }

    [Theory]
    [MemberData(nameof(Accepts))]
    public async Task ErrorsAreProblemsWhateverTheClientAccepts(string? accept)
    {
        using var anonymous = Client(accept, authenticated: false);
        using var admin = Client(accept);
        using var plain = factory.Admin();

        var unauthorized = await anonymous.GetAsync(Api.Operations);
        await unauthorized.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.True(unauthorized.Headers.WwwAuthenticate.Count > 0);
        await (await admin.GetAsync($"{Api.Operations}987654321/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await admin.GetAsync("/api/v1/no_such_resource/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await admin.GetAsync($"{Api.Operations}?limit=abc")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var count = (await plain.GetJsonAsync(Api.Operations))["count"]!.GetValue<int>();
        var refused = await admin.PostJsonAsync(Api.Operations, new JsonObject { ["colour"] = "blue" });
        await refused.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(count, (await plain.GetJsonAsync(Api.Operations))["count"]!.GetValue<int>());
    }

    /// <summary>
    /// A method no route serves is a 501 problem, and leaves no trace in /metrics, whose HTTP
    /// series are labelled by method (each made-up method added series for good).
    /// </summary>
    [Theory]
    [InlineData("TRACE", "/healthz")]
    [InlineData("PROPFIND", "/api/v1/inventory_device/")]
    [InlineData("XRANDOMWORD", "/metrics")]
    public async Task AMethodNoRouteServesIsA501AndAddsNoMetricsSeries(string method, string path)
    {
        using var anonymous = factory.Anonymous();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);

        var response = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        var problem = await response.AssertProblemAsync(HttpStatusCode.NotImplemented, "not_implemented");
        Assert.Contains(method, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        var metrics = await anonymous.GetStringAsync("/metrics");
        Assert.Matches("[{,]method=\"GET\"", metrics);
        Assert.DoesNotMatch($"[{{,]method=\"{method}\"", metrics);
        // Methods that are served still get a 405 where a route does not take them.
        await (await anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/healthz"))).AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method_not_allowed");
    }

    /// <summary>HEAD is the GET of the same URL without its body: the same status and headers.</summary>
    [Fact]
    public async Task HeadAnswersAsGetWithoutTheBody()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var url = $"{Api.Operations}{operation["id"]}/";
        var get = await admin.GetAsync(url);

        var head = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        var missing = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"{Api.Operations}999999/"));
        var anonymous = await factory.Anonymous().SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        using var streamHead = new HttpRequestMessage(HttpMethod.Head, "/api/v1/events/stream");
        using var stream = await admin.SendAsync(streamHead).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(get.Headers.ETag, head.Headers.ETag);
        Assert.Equal(get.Content.Headers.ContentType, head.Content.Headers.ContentType);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Empty(await missing.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("Bearer", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        // A live stream's HEAD sends its headers and ends rather than stream into nothing.
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        Assert.Empty(await stream.Content.ReadAsByteArrayAsync().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [MemberData(nameof(Accepts))]
    public async Task AFailureNobodyPlannedForIsA500ProblemWithTheRequestIdAndNoInternals(string? accept)
    {
        using var client = Client(accept);

        var response = await client.GetAsync(FailingPath);

        var problem = await response.AssertProblemAsync(HttpStatusCode.InternalServerError, "internal_error");
        Assert.DoesNotContain("connection string", problem.ToJsonString(), StringComparison.Ordinal);
    }
}
