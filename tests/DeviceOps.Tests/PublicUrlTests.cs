using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

/// <summary>With DeviceOps:PublicUrl set, links in answers point there, whatever Host a request names.</summary>
public sealed class PublicUrlTests : OwnServerTests
{
    public PublicUrlTests() => Factory.Settings["DeviceOps:PublicUrl"] = "https://deviceops.example.com/inventory/";

    [Fact]
    public async Task ListAndFeedLinksUseThePublicUrlNotTheRequestsHost()
    {
        using var admin = Factory.Admin();
        await Seeder.DeviceAsync(admin);
        await Seeder.DeviceAsync(admin);

        using var list = new HttpRequestMessage(HttpMethod.Get, $"{Api.Devices}?limit=1");
        list.Headers.Host = "attacker.example";
        var page = JsonNode.Parse(await (await admin.SendAsync(list)).Content.ReadAsStringAsync())!;
        using var feed = new HttpRequestMessage(HttpMethod.Get, "/api/v1/events/?limit=1");
        feed.Headers.Host = "attacker.example";
        var events = JsonNode.Parse(await (await admin.SendAsync(feed)).Content.ReadAsStringAsync())!;

        Assert.Equal("https://deviceops.example.com/inventory/api/v1/inventory_device/?limit=1&offset=1", page["next"]!.GetValue<string>());
        Assert.StartsWith("https://deviceops.example.com/inventory/api/v1/events/?", events["next"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
