using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DeviceOps.Tests.Infrastructure;

/// <summary>One request the receiver got: what it said, whether its signature held, and what we answered.</summary>
public sealed record Arrival(string EventId, string Type, string DeviceId, string DeliveryId, string Timestamp,
    bool SignatureValid, int Answered, JsonObject Body);

/// <summary>
/// A webhook receiver as a customer would run one: a real HTTP server on a loopback port that
/// checks every signature with the shared secret, written from SPEC §5 rather than from the
/// server's code, and records every request. <see cref="Answer"/> decides the status code.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private WebApplication? _app;

    private WebhookReceiver(string secret)
    {
        Secret = secret;
    }

    public string Secret { get; }
    public int Port { get; private set; }
    public string Url => $"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/hooks/deviceops";
    public ConcurrentQueue<Arrival> Arrivals { get; } = new();

    /// <summary>How long the receiver takes before it answers (default: at once).</summary>
    public TimeSpan Hold { get; set; }

    private int _inFlight;
    private int _mostInFlight;

    /// <summary>The most requests the receiver has held at one time.</summary>
    public int MostInFlight => Volatile.Read(ref _mostInFlight);

    /// <summary>The status code to answer an event with (default 204).</summary>
    public Func<JsonObject, int> Answer { get; set; } = _ => 204;

    /// <summary>The arrivals we answered 2xx, in order of arrival.</summary>
    public List<Arrival> Accepted => [.. Arrivals.Where(a => a.Answered is >= 200 and < 300)];

    public static async Task<WebhookReceiver> StartAsync(string? secret = null, int port = 0)
    {
        var receiver = new WebhookReceiver(secret ?? $"whsec-{Guid.NewGuid():N}");
        await receiver.ListenAsync(port);
        return receiver;
    }

    /// <summary>Listens again (on the same port unless told otherwise), after <see cref="StopAsync"/>.</summary>
    public async Task ListenAsync(int port = -1)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{(port < 0 ? Port : port).ToString(CultureInfo.InvariantCulture)}");
        var app = builder.Build();
        app.MapPost("/hooks/deviceops", Receive);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Port = new Uri(address).Port;
        _app = app;
    }

    public async Task StopAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    private async Task<IResult> Receive(HttpRequest request)
    {
        var inFlight = Interlocked.Increment(ref _inFlight);
        try
        {
            for (var most = Volatile.Read(ref _mostInFlight); inFlight > most; most = Volatile.Read(ref _mostInFlight))
            {
                Interlocked.CompareExchange(ref _mostInFlight, inFlight, most);
            }
            if (Hold > TimeSpan.Zero)
            {
                await Task.Delay(Hold);
            }
            return await RecordAsync(request);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task<IResult> RecordAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer);
        var raw = buffer.ToArray();
        var (timestamp, valid) = Verify(request.Headers["X-DeviceOps-Signature"].ToString(), raw, Secret);
        var body = JsonNode.Parse(raw)!.AsObject();
        var status = valid ? Answer(body) : 400;
        Arrivals.Enqueue(new Arrival(request.Headers["X-DeviceOps-Event-Id"].ToString(), request.Headers["X-DeviceOps-Event-Type"].ToString(),
            body["device_id"]!.GetValue<string>(), request.Headers["X-DeviceOps-Delivery"].ToString(), timestamp, valid, status, body));
        return Results.StatusCode(status);
    }

    /// <summary>What a receiver does: HMAC-SHA256 of "t.body" with the secret, compared in constant time.</summary>
    public static (string Timestamp, bool Valid) Verify(string header, byte[] body, string secret)
    {
        var parts = header.Split(',').Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        if (!parts.TryGetValue("t", out var t) || !parts.TryGetValue("v1", out var v1))
        {
            return ("", false);
        }
        var signed = Encoding.UTF8.GetBytes(t + ".").Concat(body).ToArray();
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
        return (t, CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(v1)));
    }

    /// <summary>
    /// Waits (real time) until the condition holds, polling; fails the test after the timeout. A
    /// wait ends as soon as the condition holds, so the timeout is generous: with every test class
    /// running at once on PostgreSQL, a first delivery once took more than 8 s (a fresh clone's
    /// run), and the feed also holds back commits while any transaction of the cluster that began
    /// before them is open.
    /// </summary>
    public async Task WaitUntilAsync(Func<WebhookReceiver, bool> condition, string what, double seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition(this))
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what}; arrivals: " +
                    string.Join("; ", Arrivals.Select(a => $"{a.DeviceId} {a.Type} {a.EventId} → {a.Answered}")));
            }
            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
