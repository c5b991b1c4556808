using System.Text.Json.Nodes;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace DeviceOps.Console.Tests;

/// <summary>
/// The web console in a real headless Chromium against the server on a socket, with real tokens:
/// what a person sees and does. Each test works in an organization of its own, with a token
/// limited to it, so the counts it reads are its own whatever else runs.
/// </summary>
public sealed class ConsoleTests(ConsoleFixture fixture) : IClassFixture<ConsoleFixture>
{
    private static readonly string[] Operator = ["devices:read", "operations:read", "operations:write"];
    private static readonly string[] Supervisor = ["devices:read", "operations:read", "operations:write", "operations:override"];
    private static readonly string[] Reader = ["devices:read", "operations:read"];

    private static string Email(string who) => $"{Seed.Unique(who)}@example.com";

    private async Task<(string Organization, string Token)> OrganizationWithTokenAsync(HttpClient admin, string[] scopes, string user)
    {
        var organization = await Seed.OrganizationAsync(admin);
        return (organization, await fixture.Server.TokenAsync(user, scopes, [organization]));
    }

    [Fact]
    public async Task AnUnknownTokenIsRefusedWithTheServersReason()
    {
        await using var tab = await fixture.NewPageAsync();
        await tab.Page.GotoAsync("/");
        await tab.ScreenshotAsync("01-sign-in");

        await tab.Page.GetByLabel("API token").FillAsync("dop_this-token-does-not-exist-anywhere-at-all");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        await Expect(tab.Page.Locator("#token-error")).ToContainTextAsync("The token is unknown.");
        await Expect(tab.Page.GetByLabel("API token")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(tab.Page.Locator("#sign-out")).ToBeHiddenAsync();
        await tab.ScreenshotAsync("02-sign-in-refused");
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task ATokenRevokedDuringTheSessionBringsBackTheSignInFormWithTheReason()
    {
        using var admin = fixture.Server.Admin();
        var organization = await Seed.OrganizationAsync(admin);
        var created = JsonNode.Parse(await (await admin.PostAsync("api/v1/token/", ConsoleServer.Json(new JsonObject
        {
            ["user"] = Email("leaver"),
            ["scopes"] = new JsonArray("devices:read"),
            ["organizations"] = new JsonArray(organization),
        }))).Content.ReadAsStringAsync())!;
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(created["token"]!.GetValue<string>());

        Assert.True((await admin.DeleteAsync($"api/v1/token/{created["id"]}/")).IsSuccessStatusCode);
        try
        {
            await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync(new() { Timeout = 5000 });
        }
        catch (TimeoutException)
        {
            // A live refresh that ran into the revocation first has already signed the page out.
        }

        await Expect(tab.Page.Locator("#token-error")).ToHaveTextAsync("Signed out: The token has been revoked.");
        await Expect(tab.Page.Locator("#sign-out")).ToBeHiddenAsync();
        Assert.Null(await tab.Page.EvaluateAsync<string?>("sessionStorage.getItem('deviceops.token')"));
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task SignInShowsTheCountsAndTheTableFiltersAndSorts()
    {
        using var admin = fixture.Server.Admin();
        var user = Email("viewer");
        var (organization, token) = await OrganizationWithTokenAsync(admin, Reader, user);
        var active = Seed.Unique("A");
        var overdue = Seed.Unique("B");
        var planned = Seed.Unique("C");
        await Seed.DeviceAsync(admin, organization, active, "active");
        await Seed.DeviceAsync(admin, organization, overdue, "maintenance", DateTimeOffset.UtcNow.AddDays(-3));
        await Seed.DeviceAsync(admin, organization, planned, "maintenance", DateTimeOffset.UtcNow.AddDays(30));
        await using var tab = await fixture.NewPageAsync();

        await tab.SignInAsync(token);

        await Expect(tab.Page.Locator("#who")).ToContainTextAsync(user);
        await Expect(tab.Page.Locator("#who")).ToContainTextAsync(organization);
        var tiles = tab.Page.Locator(".tiles");
        await Expect(tiles.Locator("[data-status=total] .count")).ToHaveTextAsync("3");
        await Expect(tiles.Locator("[data-status=maintenance] .count")).ToHaveTextAsync("2");
        await Expect(tiles.Locator("[data-status=active] .count")).ToHaveTextAsync("1");
        await Expect(tiles.Locator("[data-status=overdue] .count")).ToHaveTextAsync("1");
        await Expect(tab.Page.Locator(".by-organization tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Page.Locator(".device-table tbody tr")).ToHaveCountAsync(3);
        await tab.ScreenshotAsync("03-overview");

        await tab.Page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync("maintenance");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();

        var rows = tab.Page.Locator(".device-table tbody tr");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(rows.Nth(0)).ToHaveAttributeAsync("data-device", overdue);
        await Expect(rows.Nth(1)).ToHaveAttributeAsync("data-device", planned);
        await Expect(rows.Nth(0)).ToContainTextAsync("Overdue");
        await Expect(rows.Nth(1)).Not.ToContainTextAsync("Overdue");
        await Expect(tab.Page.Locator(".count-line")).ToHaveTextAsync("Showing 1–2 of 2 devices");
        Assert.Contains("operational_status=maintenance", tab.Page.Url, StringComparison.Ordinal);

        // The Device column's header sorts; a second press reverses.
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Device", Exact = true }).ClickAsync();
        await Expect(tab.Page.Locator("th[aria-sort=descending]")).ToContainTextAsync("Device");
        await Expect(rows.Nth(0)).ToHaveAttributeAsync("data-device", planned);
        await Expect(rows.Nth(1)).ToHaveAttributeAsync("data-device", overdue);

        await tab.Page.GetByLabel("Maintenance overdue only").CheckAsync();
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.Nth(0)).ToHaveAttributeAsync("data-device", overdue);
        await tab.ScreenshotAsync("04-overview-filtered");
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task CompletingAMaintenanceJobFromTheDevicePageAddsItToTheTimeline()
    {
        using var admin = fixture.Server.Admin();
        var user = Email("oncall");
        var (organization, token) = await OrganizationWithTokenAsync(admin, Operator, user);
        var code = Seed.Unique("SW");
        await Seed.DeviceAsync(admin, organization, code, "active");
        var operation = await Seed.OperationAsync(admin, code, "in_progress");
        var id = operation["id"]!.GetValue<int>();
        await Seed.PatchAsync(admin, $"api/v1/inventory_device_operation/{id}/", new JsonObject { ["operational_status"] = "maintenance" });
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token);

        await tab.Page.GetByRole(AriaRole.Link, new() { Name = code }).ClickAsync();

        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync($"Switch {code}");
        Assert.EndsWith($"/devices/{code}", tab.Page.Url, StringComparison.Ordinal);
        await Expect(tab.Page.Locator(".state")).ToContainTextAsync("maintenance");
        await Expect(tab.Page.Locator(".state")).ToContainTextAsync("Warehouse A - Section 3");
        await Expect(tab.Page.Locator("#configuration-title + dl")).ToContainTextAsync("2.1.4");
        var item = tab.Page.Locator($"[data-operation='{id}']");
        await Expect(item).ToContainTextAsync("in progress");
        await tab.ScreenshotAsync("05-device");

        await item.GetByRole(AriaRole.Button, new() { Name = "Complete…" }).ClickAsync();

        // The form offers only what the rules allow from in_progress, and no override without the scope.
        var status = item.GetByLabel("Operation status");
        await Expect(status).ToHaveValueAsync("completed");
        Assert.Equal(["", "completed", "failed", "cancelled"], await status.Locator("option").EvaluateAllAsync<string[]>("options => options.map(o => o.value)"));
        Assert.Equal(["", "active", "inactive", "decommissioned"],
            await item.GetByLabel("Device status").Locator("option").EvaluateAllAsync<string[]>("options => options.map(o => o.value)"));
        await Expect(item.GetByLabel("Device status")).ToHaveValueAsync("active");
        await Expect(item.GetByLabel("Justification (override)")).ToHaveCountAsync(0);
        await tab.ScreenshotAsync("06-operation-form");

        await item.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();

        await Expect(item).ToContainTextAsync("completed");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("active");
        var newest = tab.Page.Locator(".timeline > li");
        var statusEntry = tab.Page.Locator(".timeline > li[data-action=status_change]").First;
        await Expect(statusEntry).ToContainTextAsync("maintenance → active");
        await Expect(statusEntry).ToContainTextAsync($"by {user}");
        var operationEntry = tab.Page.Locator(".timeline > li[data-action=operation_status_change]").First;
        await Expect(operationEntry).ToContainTextAsync("in_progress → completed");
        await Expect(operationEntry).ToContainTextAsync($"operation #{id}");
        await Expect(newest.First).ToHaveAttributeAsync("data-action", "status_change");
        await tab.ScreenshotAsync("07-device-after-completion");

        using var check = fixture.Server.Admin();
        var stored = JsonNode.Parse(await check.GetStringAsync($"api/v1/inventory_device_operation/{id}/"))!;
        Assert.Equal("completed", stored["status"]!.GetValue<string>());
        Assert.Equal("active", stored["operational_status"]!.GetValue<string>());
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task TheOverviewFollowsAChangeMadeThroughTheApiWithoutAReload()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Reader, Email("watcher"));
        var code = Seed.Unique("AP");
        var device = await Seed.DeviceAsync(admin, organization, code, "active");
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token);
        await tab.WaitUntilLiveAsync();
        var row = tab.Page.Locator($".device-table tr[data-device='{code}']");
        await Expect(row).ToContainTextAsync("active");
        await tab.Page.EvaluateAsync("window.notReloaded = true");
        await tab.Page.Locator("[data-sort=operational_status]").FocusAsync();

        await Seed.PatchAsync(admin, $"api/v1/inventory_device/{device["id"]}/", new JsonObject { ["operational_status"] = "maintenance" });

        await Expect(row.Locator(".badge")).ToHaveTextAsync("maintenance");
        // The refresh keeps a keyboard user's place.
        await Expect(tab.Page.Locator("[data-sort=operational_status]")).ToBeFocusedAsync();
        await Expect(tab.Page.Locator(".tiles [data-status=maintenance] .count")).ToHaveTextAsync("1");
        await Expect(tab.Page.Locator(".tiles [data-status=active] .count")).ToHaveTextAsync("0");
        await Expect(tab.Page.Locator("#announcer")).ToContainTextAsync($"{code} status changed: active → maintenance");
        Assert.True(await tab.Page.EvaluateAsync<bool>("window.notReloaded === true"), "The page was reloaded.");
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task TheDevicePageTimelineFollowsAChangeMadeThroughTheApi()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Reader, Email("watcher"));
        var code = Seed.Unique("RT");
        var device = await Seed.DeviceAsync(admin, organization, code, "active");
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token, $"/devices/{code}");
        await tab.WaitUntilLiveAsync();
        await Expect(tab.Page.Locator(".timeline > li[data-action=created]")).ToHaveCountAsync(1);
        await Expect(tab.Page.Locator(".timeline > li[data-action=relocation]")).ToHaveCountAsync(1);

        await Seed.PatchAsync(admin, $"api/v1/inventory_device/{device["id"]}/", new JsonObject { ["location"] = "Building A - Floor 2" });

        var relocation = tab.Page.Locator(".timeline > li[data-action=relocation]");
        await Expect(relocation).ToHaveCountAsync(2);
        await Expect(relocation.First).ToContainTextAsync("Warehouse A - Section 3 → Building A - Floor 2");
        await Expect(tab.Page.Locator(".state")).ToContainTextAsync("Building A - Floor 2");
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task ARefusedTransitionIsExplainedNextToTheFieldAndAJustificationOverridesIt()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Supervisor, Email("supervisor"));
        var code = Seed.Unique("OV");
        await Seed.DeviceAsync(admin, organization, code, "active");
        var id = (await Seed.OperationAsync(admin, code, "completed"))["id"]!.GetValue<int>();
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token, $"/devices/{code}");
        var item = tab.Page.Locator($"[data-operation='{id}']");

        await item.GetByRole(AriaRole.Button, new() { Name = "Update…" }).ClickAsync();
        await item.GetByLabel("Operation status").SelectOptionAsync("in_progress");
        await item.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();

        var error = item.Locator(".field-error[data-error-for=status]");
        await Expect(error).ToContainTextAsync("Refused: completed → in_progress is not allowed. Allowed next: none (it is final).");
        await Expect(error).ToContainTextAsync("write a justification");
        await Expect(item.GetByLabel("Operation status")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(item.GetByLabel("Operation status")).ToBeFocusedAsync();
        await Expect(item.Locator("h3 .badge")).ToHaveTextAsync("completed");
        await tab.ScreenshotAsync("08-refused-transition");

        await item.GetByLabel("Justification (override)").FillAsync("Closed by mistake; the work continues");
        await item.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();

        var entry = tab.Page.Locator(".timeline > li[data-action=operation_status_change]").First;
        await Expect(entry).ToContainTextAsync("completed → in_progress");
        await Expect(entry).ToContainTextAsync("Justification: Closed by mistake; the work continues");
        await Expect(item.Locator("h3 .badge")).ToHaveTextAsync("in progress");
        using var check = fixture.Server.Admin();
        var stored = JsonNode.Parse(await check.GetStringAsync($"api/v1/inventory_device_operation/{id}/"))!;
        Assert.Equal("in_progress", stored["status"]!.GetValue<string>());
        Assert.Null(stored["completed_at"]);
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task SavingAFormAfterSomeoneElseChangedTheOperationIsRefusedAndSaysWhy()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Operator, Email("oncall"));
        var code = Seed.Unique("ST");
        await Seed.DeviceAsync(admin, organization, code, "active");
        var id = (await Seed.OperationAsync(admin, code, "in_progress"))["id"]!.GetValue<int>();
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token, $"/devices/{code}");
        var item = tab.Page.Locator($"[data-operation='{id}']");
        await item.GetByRole(AriaRole.Button, new() { Name = "Update…" }).ClickAsync();
        await item.GetByLabel("Operation notes").FillAsync("Replaced the fan");

        await Seed.PatchAsync(admin, $"api/v1/inventory_device_operation/{id}/", new JsonObject { ["status"] = "failed" });
        await item.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();

        await Expect(item.Locator(".form-error")).ToContainTextAsync("Someone changed this operation or its device since you opened the form, so nothing was saved.");
        using var check = fixture.Server.Admin();
        var stored = JsonNode.Parse(await check.GetStringAsync($"api/v1/inventory_device_operation/{id}/"))!;
        Assert.Null(stored["notes"]);
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task AReadOnlyTokenSeesNoWriteControls()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Reader, Email("auditor"));
        var code = Seed.Unique("RO");
        await Seed.DeviceAsync(admin, organization, code, "active");
        await Seed.OperationAsync(admin, code, "in_progress");
        await using var tab = await fixture.NewPageAsync();

        await tab.SignInAsync(token, $"/devices/{code}");

        await Expect(tab.Page.Locator(".operation")).ToHaveCountAsync(1);
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Start an operation" })).ToHaveCountAsync(0);
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Update…" })).ToHaveCountAsync(0);
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Complete…" })).ToHaveCountAsync(0);
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task StartingAnOperationWithTheKeyboardOnly()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Operator, Email("oncall"));
        var code = Seed.Unique("KB");
        await Seed.DeviceAsync(admin, organization, code, "active");
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token, $"/devices/{code}");

        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Start an operation" }).FocusAsync();
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByLabel("Type")).ToBeFocusedAsync();
        await tab.Page.Keyboard.PressAsync("Tab");
        await Expect(tab.Page.GetByLabel("Status", new() { Exact = true })).ToBeFocusedAsync();
        await tab.Page.Keyboard.PressAsync("Tab");
        await tab.Page.Keyboard.PressAsync("Tab");
        await Expect(tab.Page.GetByLabel("Operator")).ToBeFocusedAsync();
        await tab.Page.Keyboard.TypeAsync("OP-789");
        await tab.Page.Keyboard.PressAsync("Enter");

        var entry = tab.Page.Locator(".timeline > li[data-action=operation_created]");
        await Expect(entry).ToHaveCountAsync(1);
        await Expect(tab.Page.Locator(".operation")).ToContainTextAsync("OP-789");
        tab.AssertNoScriptErrors();
    }

    [Fact]
    public async Task TheOverviewAndTheDevicePageHaveNoAccessibilityViolations()
    {
        using var admin = fixture.Server.Admin();
        var (organization, token) = await OrganizationWithTokenAsync(admin, Supervisor, Email("a11y"));
        var code = Seed.Unique("AX");
        await Seed.DeviceAsync(admin, organization, code, "maintenance", DateTimeOffset.UtcNow.AddDays(-1));
        await Seed.OperationAsync(admin, code, "in_progress");
        await using var tab = await fixture.NewPageAsync();
        await tab.SignInAsync(token);
        await Expect(tab.Page.Locator(".device-table tbody tr")).ToHaveCountAsync(1);

        await AssertAccessibleAsync(tab.Page, "overview");
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = code }).ClickAsync();
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Update…" }).ClickAsync();
        await Expect(tab.Page.GetByLabel("Justification (override)")).ToBeVisibleAsync();
        await AssertAccessibleAsync(tab.Page, "device page with its form");
        tab.AssertNoScriptErrors();

        // The check is real, not a no-op: an input without a label is found at once.
        await tab.Page.EvaluateAsync("document.querySelector('main').append(document.createElement('input'))");
        var broken = await tab.Page.RunAxe();
        Assert.Contains(broken.Violations, v => v.Id == "label");
    }

    private static async Task AssertAccessibleAsync(IPage page, string what)
    {
        var result = await page.RunAxe();
        Assert.True(result.Violations.Length == 0, $"axe found on the {what}:\n" + string.Join("\n", result.Violations.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} — {string.Join("; ", v.Nodes.Select(n => string.Join(" ", n.Target?.ToString() ?? "")))}")));
    }
}
