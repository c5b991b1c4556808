using Microsoft.Playwright;

namespace DeviceOps.Console.Tests;

/// <summary>
/// One server and one headless Chromium for the console tests. The browser is Debian's
/// (/usr/bin/chromium, or DEVICEOPS_CHROMIUM): Playwright drives it through the driver its NuGet
/// package carries, and never downloads a browser of its own.
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    public const string ChromiumSetting = "DEVICEOPS_CHROMIUM";
    public const string ScreenshotsSetting = "DEVICEOPS_SCREENSHOTS";

    private IPlaywright? _playwright;

    public ConsoleServer Server { get; } = new();
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where screenshots go: DEVICEOPS_SCREENSHOTS (scripts/test.sh points it into the run's results), else TestResults/console-screenshots/STORE.</summary>
    public string ScreenshotFolder { get; } = Environment.GetEnvironmentVariable(ScreenshotsSetting) is { Length: > 0 } given
        ? given
        : Path.Combine(RepositoryRoot(), "TestResults", "console-screenshots", ConsoleServer.StoreName);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(ScreenshotFolder);
        await Server.StartAsync();
        var chromium = Environment.GetEnvironmentVariable(ChromiumSetting) is { Length: > 0 } path ? path : "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"No Chromium at {chromium}: install Debian's 'chromium' package (scripts/test.sh does) or set {ChromiumSetting}.");
        }
        // Expectations wait for the page (and the live stream) a little longer than the default 5 s on a busy machine.
        Assertions.SetDefaultExpectTimeout(15_000);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        _playwright?.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>A fresh browser tab at desktop size (its own sessionStorage) that records script errors and CSP violations.</summary>
    public async Task<ConsolePage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
            Locale = "en-GB",
            TimezoneId = "UTC",
        });
        var page = await context.NewPageAsync();
        return new ConsolePage(this, context, page);
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "DeviceOps.slnx")))
            {
                return folder.FullName;
            }
        }
        return Directory.GetCurrentDirectory();
    }
}

/// <summary>A browser tab on the console, with the steps a person takes.</summary>
public sealed class ConsolePage(ConsoleFixture fixture, IBrowserContext context, IPage page) : IAsyncDisposable
{
    private readonly List<string> _errors = Watch(page);

    public IPage Page { get; } = page;

    private static List<string> Watch(IPage page)
    {
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            // A 4xx the console explains (a refused sign-in, a 409) is logged by the browser too; that is not a fault.
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
            {
                lock (errors)
                {
                    errors.Add(message.Text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (errors)
            {
                errors.Add(error);
            }
        };
        return errors;
    }

    public async Task SignInAsync(string token, string path = "/")
    {
        await Page.GotoAsync(path);
        await Page.GetByLabel("API token").FillAsync(token);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(Page.Locator("#sign-out")).ToBeVisibleAsync();
    }

    /// <summary>Waits until the page follows the event stream, so a change made now reaches it.</summary>
    public Task WaitUntilLiveAsync() => Assertions.Expect(Page.Locator("#live-state")).ToHaveTextAsync("Live");

    /// <summary>
    /// Saves the page at desktop size and at a phone's 375 px, and checks that at 375 px nothing
    /// is wider than the screen (no sideways scrolling of the page).
    /// </summary>
    public async Task ScreenshotAsync(string name)
    {
        await Page.ScreenshotAsync(new() { Path = Path.Combine(fixture.ScreenshotFolder, $"{name}-desktop.png"), FullPage = true });
        await Page.SetViewportSizeAsync(375, 812);
        try
        {
            await Page.ScreenshotAsync(new() { Path = Path.Combine(fixture.ScreenshotFolder, $"{name}-phone.png"), FullPage = true });
            var width = await Page.EvaluateAsync<int>("document.documentElement.scrollWidth");
            Assert.True(width <= 375, $"At 375 px the page '{name}' is {width} px wide: it scrolls sideways.");
        }
        finally
        {
            await Page.SetViewportSizeAsync(1280, 900);
        }
    }

    /// <summary>No script error and no Content-Security-Policy violation happened on the page.</summary>
    public void AssertNoScriptErrors()
    {
        lock (_errors)
        {
            Assert.True(_errors.Count == 0, "The page logged errors:\n" + string.Join("\n", _errors));
        }
    }

    public async ValueTask DisposeAsync() => await context.CloseAsync();
}
