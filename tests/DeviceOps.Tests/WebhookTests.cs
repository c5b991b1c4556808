using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Tests.Infrastructure;
using DeviceOps.Webhooks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DeviceOps.Tests;

/// <summary>
/// Webhooks end to end: a real receiver on a loopback port checks every signature. Each test has
/// a server of its own, since tests move its clock to make retries due.
/// </summary>
public sealed class WebhookTests : IAsyncLifetime, IDisposable
{
    private const string Webhooks = "/api/v1/webhook/";
    private readonly DeviceOpsFactory _factory = WithWebhookSettings(new DeviceOpsFactory());
    private readonly List<DeviceOpsFactory> _others = [];

    private static DeviceOpsFactory WithWebhookSettings(DeviceOpsFactory factory)
    {
        factory.Settings["DeviceOps:Webhooks:BaseDelaySeconds"] = "1";
        factory.Settings["DeviceOps:Webhooks:MaxDelaySeconds"] = "60";
        factory.Settings["DeviceOps:Webhooks:MaxAttempts"] = "3";
        factory.Settings["DeviceOps:Webhooks:TimeoutSeconds"] = "5";
        return factory;
    }

    public Task InitializeAsync() => _factory.InitializeAsync();

    public async Task DisposeAsync()
    {
        foreach (var other in _others)
        {
            await ((IAsyncLifetime)other).DisposeAsync();
        }
        await ((IAsyncLifetime)_factory).DisposeAsync();
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AListOfOrganizationsLongerThanTheStoreKeepsIsRefusedOnBothStores()
    {
        using var admin = _factory.Admin();
        var names = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 600), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (_, _) =>
        {
            using var client = _factory.Admin();
            names.Add(await Seeder.OrganizationAsync(client));
        });
        var before = (await admin.GetJsonAsync(Webhooks))["count"]!.GetValue<int>();
        var body = new JsonObject
        {
            ["url"] = "https://receiver.example.com/hook",
            ["secret"] = "a-secret-of-sixteen-or-more",
            ["events"] = new JsonArray("device.relocated"),
            ["organizations"] = new JsonArray([.. names.Select(n => JsonValue.Create(n))]),
        };

        var refused = await (await admin.PostJsonAsync(Webhooks, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        Assert.Contains("Too many organizations", refused.Messages("organizations").Single(), StringComparison.Ordinal);
        Assert.Equal(before, (await admin.GetJsonAsync(Webhooks))["count"]!.GetValue<int>());
        body["organizations"] = new JsonArray([.. names.Take(5).Select(n => JsonValue.Create(n))]);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostJsonAsync(Webhooks, body)).StatusCode);
    }

    [Fact]
    public async Task AnEventCommittedAfterTheWebhookArrivesSignedAndVerifiable()
    {
        using var admin = _factory.Admin();
        var before = await Seeder.DeviceAsync(admin);
        await using var receiver = await WebhookReceiver.StartAsync();
        var webhook = await CreateAsync(admin, receiver);

        var device = await Seeder.DeviceAsync(admin);

        var code = Code(device);
        await receiver.WaitUntilAsync(r => r.Accepted.Any(a => a.DeviceId == code), "the device.created event");
        // Creating a device is several events (created, relocated, configuration_changed); wait for them all.
        await EventIdsAsync(admin, code, CreationEvents);
        var feed = (await admin.GetJsonAsync($"/api/v1/events/?device_id={code}"))["results"]!.AsArray();
        await receiver.WaitUntilAsync(r => r.Accepted.Count(a => a.DeviceId == code) == feed.Count, "every event of the new device");
        var arrivals = receiver.Arrivals.Where(a => a.DeviceId == code).ToList();
        var arrival = arrivals[0];
        Assert.All(receiver.Arrivals, a => Assert.True(a.SignatureValid));
        Assert.Equal(feed.Select(e => e!["id"]!.GetValue<string>()), arrivals.Select(a => a.EventId));
        Assert.Equal(_factory.Clock.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), arrival.Timestamp);
        var first = feed[0]!;
        Assert.True(JsonNode.DeepEquals(first, arrival.Body), $"{first.ToJsonString()}\n{arrival.Body.ToJsonString()}");
        Assert.Equal(first["id"]!.GetValue<string>(), arrival.EventId);
        Assert.Equal("device.created", arrival.Type);
        // A body changed on the way no longer verifies.
        var tampered = Encoding.UTF8.GetBytes(arrival.Body.ToJsonString().Replace(code, "DEV-OTHER", StringComparison.Ordinal));
        Assert.False(WebhookReceiver.Verify($"t={arrival.Timestamp},v1=00", tampered, receiver.Secret).Valid);

        // The dispatcher records the receiver's answer just after the receiver has seen the request.
        await WaitForLogAsync(admin, webhook, l => l.Any(d => d!["event_id"]!.GetValue<string>() == arrival.EventId
            && d["status"]!.GetValue<string>() == "delivered"), "the delivery recorded");
        var log = await DeliveriesAsync(admin, webhook);
        var delivery = ById(log, arrival.EventId);
        Assert.Equal(arrival.DeliveryId, delivery!["id"]!.ToString());
        Assert.Equal(arrival.EventId, delivery["event_id"]!.GetValue<string>());
        Assert.Equal("delivered", delivery["status"]!.GetValue<string>());
        Assert.Equal(1, delivery["attempts"]!.GetValue<int>());
        Assert.Equal(204, delivery["last_status_code"]!.GetValue<int>());
        Assert.NotNull(delivery["delivered_at"]);
        // On PostgreSQL a new webhook starts below the oldest transaction running anywhere in the
        // cluster, so an event committed just before it may come too (never one after it is missed).
        if (!DeviceOpsFactory.OnPostgres)
        {
            Assert.DoesNotContain(receiver.Arrivals, a => a.DeviceId == Code(before));
            Assert.Equal(feed.Count, log.Count);
        }
    }

    [Fact]
    public async Task AReceiverThatFailsThenIsDownGetsEverythingInOrderOnceUp()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = _ => 500;
        var webhook = await CreateAsync(admin, receiver);
        var device = await Seeder.DeviceAsync(admin);
        var code = Code(device);
        for (var i = 1; i <= 3; i++)
        {
            await Relocate(admin, device, $"Rack {i}");
        }
        var expected = await EventIdsAsync(admin, code, CreationEvents + 3);

        await WaitForLogAsync(admin, webhook, log => log.Count == 6 && Attempts(log, expected[0]) == 1, "a first failed attempt");
        var log = await DeliveriesAsync(admin, webhook);
        var head = ById(log, expected[0]);
        Assert.Equal(500, head["last_status_code"]!.GetValue<int>());
        Assert.Contains("500", head["last_error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("pending", head["status"]!.GetValue<string>());
        Assert.All(expected.Skip(1), id => Assert.Equal(0, Attempts(log, id)));
        Assert.All(receiver.Arrivals, a => Assert.Equal(expected[0], a.EventId));

        // Down: nobody listens on the port any more.
        await receiver.StopAsync();
        Tick();
        await WaitForLogAsync(admin, webhook, l => Attempts(l, expected[0]) == 2, "a second failed attempt");
        head = ById(await DeliveriesAsync(admin, webhook), expected[0]);
        Assert.Null(head["last_status_code"]);
        Assert.False(string.IsNullOrEmpty(head["last_error"]!.GetValue<string>()));

        receiver.Answer = _ => 200;
        await receiver.ListenAsync();
        Tick();
        await receiver.WaitUntilAsync(r => r.Accepted.Count == 6, "every event once the receiver is up");

        Assert.Equal(expected, receiver.Accepted.Select(a => a.EventId));
        Assert.All(receiver.Arrivals, a => Assert.True(a.SignatureValid));
        await WaitForLogAsync(admin, webhook, l => l.All(d => d!["status"]!.GetValue<string>() == "delivered"), "every answer recorded");
        log = await DeliveriesAsync(admin, webhook);
        Assert.All(log, d => Assert.Equal("delivered", d!["status"]!.GetValue<string>()));
        Assert.Equal(3, Attempts(log, expected[0]));
        Assert.Equal(200, ById(log, expected[0])["last_status_code"]!.GetValue<int>());
        Assert.All(expected.Skip(1), id => Assert.Equal(1, Attempts(log, id)));
    }

    [Fact]
    public async Task AFailingDeviceHoldsBackOnlyItsOwnLaterEvents()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var organization = await Seeder.OrganizationAsync(admin);
        var webhook = await CreateAsync(admin, receiver);
        var failingCode = Seeder.Unique("DEV");
        receiver.Answer = body => body["device_id"]!.GetValue<string>() == failingCode ? 503 : 204;
        var failing = await Seeder.DeviceAsync(admin, organization, code: failingCode);
        var healthy = await Seeder.DeviceAsync(admin, organization);
        for (var i = 1; i <= 3; i++)
        {
            await Relocate(admin, failing, $"Rack A{i}");
            await Relocate(admin, healthy, $"Rack B{i}");
        }
        var failingEvents = await EventIdsAsync(admin, Code(failing), CreationEvents + 3);
        var healthyEvents = await EventIdsAsync(admin, Code(healthy), CreationEvents + 3);

        await receiver.WaitUntilAsync(r => r.Accepted.Count(a => a.DeviceId == Code(healthy)) == healthyEvents.Count
            && r.Arrivals.Any(a => a.DeviceId == Code(failing)), "the healthy device's events and a failed attempt");

        Assert.Equal(healthyEvents, receiver.Accepted.Where(a => a.DeviceId == Code(healthy)).Select(a => a.EventId));
        Assert.All(receiver.Arrivals.Where(a => a.DeviceId == Code(failing)), a => Assert.Equal(failingEvents[0], a.EventId));
        // The receiver counts a delivery when it answers; the log says so once the dispatcher has recorded that answer.
        await WaitForLogAsync(admin, webhook, log => healthyEvents.All(id => log.Any(d => d!["event_id"]!.GetValue<string>() == id
            && d["status"]!.GetValue<string>() == "delivered")), "the healthy device's deliveries recorded as delivered");
        var pending = await DeliveriesAsync(admin, webhook, "pending");
        Assert.Equal(failingEvents.Order(), pending.Select(d => d!["event_id"]!.GetValue<string>()).Order());

        receiver.Answer = _ => 204;
        Tick();
        await receiver.WaitUntilAsync(r => r.Accepted.Count(a => a.DeviceId == Code(failing)) == failingEvents.Count, "the held-back events");
        Assert.Equal(failingEvents, receiver.Accepted.Where(a => a.DeviceId == Code(failing)).Select(a => a.EventId));
    }

    [Fact]
    public async Task ADeliveryIsDeadAfterTheLastAttemptStopsBlockingAndCanBeRedelivered()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = _ => 500;
        var webhook = await CreateAsync(admin, receiver);
        var device = await Seeder.DeviceAsync(admin);
        await Relocate(admin, device, "Rack 9");
        var events = await EventIdsAsync(admin, Code(device), CreationEvents + 1);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            await receiver.WaitUntilAsync(r => r.Arrivals.Count(a => a.EventId == events[0]) == attempt, $"attempt {attempt}");
            await WaitForLogAsync(admin, webhook, l => Attempts(l, events[0]) == attempt, $"attempt {attempt} recorded");
            Tick();
        }

        var dead = Assert.Single(await DeliveriesAsync(admin, webhook, "dead"))!;
        Assert.Equal(events[0], dead["event_id"]!.GetValue<string>());
        Assert.Equal(3, dead["attempts"]!.GetValue<int>());
        Assert.Equal(500, dead["last_status_code"]!.GetValue<int>());
        Assert.Null(dead["next_attempt_at"]);
        // The dead one no longer holds back the device's next event.
        await receiver.WaitUntilAsync(r => r.Arrivals.Any(a => a.EventId == events[1]), "the next event after the dead one");

        receiver.Answer = _ => 204;
        var response = await admin.PostAsync($"{Webhooks}{webhook}/deliveries/{dead["id"]}/redeliver", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var redelivered = await response.BodyAsync();
        Assert.Equal("pending", redelivered["status"]!.GetValue<string>());
        Assert.Equal(0, redelivered["attempts"]!.GetValue<int>());

        await receiver.WaitUntilAsync(r => r.Accepted.Any(a => a.EventId == events[0]), "the redelivered event");
        await WaitForLogAsync(admin, webhook, l => ById(l, events[0])["status"]!.GetValue<string>() == "delivered", "delivered in the log");
        Assert.Equal(1, Attempts(await DeliveriesAsync(admin, webhook), events[0]));
        var missing = await admin.PostAsync($"{Webhooks}{webhook}/deliveries/999999/redeliver", null);
        await missing.AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task AStoredUrlThatCannotBeSentToFailsOnlyItsOwnDeliveriesWhichRetryAndDie()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var healthy = await CreateAsync(admin, receiver);
        var broken = await CreateAsync(admin, receiver);
        // A URL today's check refuses, stored as one accepted before that check would be: sending
        // to it throws something other than an HTTP failure.
        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
            await db.Webhooks.Where(w => w.Id == broken).ExecuteUpdateAsync(s => s.SetProperty(w => w.Url, "http://\u202e.com/"));
        }

        var device = await Seeder.DeviceAsync(admin);
        var events = await EventIdsAsync(admin, Code(device), CreationEvents);

        // The same rounds carry both webhooks' deliveries: the healthy one's all arrive.
        await receiver.WaitUntilAsync(r => r.Accepted.Count(a => a.DeviceId == Code(device)) == events.Count, "the healthy webhook's events");
        await WaitForLogAsync(admin, healthy, l => l.Count(d => d!["status"]!.GetValue<string>() == "delivered") == events.Count,
            "the healthy webhook's deliveries recorded");
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            await WaitForLogAsync(admin, broken, l => Attempts(l, events[0]) == attempt, $"attempt {attempt} recorded");
            Tick();
        }
        var dead = ById(await DeliveriesAsync(admin, broken), events[0]);
        Assert.Equal("dead", dead["status"]!.GetValue<string>());
        Assert.Null(dead["last_status_code"]);
        Assert.StartsWith("The request could not be sent", dead["last_error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReceiversReasonPhraseWithANulIsRecordedAndHoldsUpNoOtherWebhook()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        // Kestrel will not send a NUL in a reason phrase; a receiver on a bare socket will.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var answering = AnswerWithNulReasonAsync(listener, stop.Token);
        var healthy = await CreateAsync(admin, receiver);
        var broken = await CreateAsync(admin, $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/hook", new string('s', 16));

        var device = await Seeder.DeviceAsync(admin);
        var events = await EventIdsAsync(admin, Code(device), CreationEvents);

        await WaitForLogAsync(admin, broken, l => Attempts(l, events[0]) == 1, "the failed attempt recorded");
        await WaitForLogAsync(admin, healthy, l => l.Count(d => d!["status"]!.GetValue<string>() == "delivered") == events.Count,
            "the healthy webhook's deliveries recorded");
        var failed = ById(await DeliveriesAsync(admin, broken), events[0]);
        // HttpClient refuses the phrase, quoting it in its message: the delivery's error.
        Assert.Null(failed["last_status_code"]);
        Assert.Contains("bad", failed["last_error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("\0", failed["last_error"]!.GetValue<string>(), StringComparison.Ordinal);
        await stop.CancelAsync();
        listener.Stop();
        await answering;
    }

    /// <summary>Answers every request on the socket with <c>500 bad\0nul</c> until stopped.</summary>
    private static async Task AnswerWithNulReasonAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync(cancellationToken);
                var stream = client.GetStream();
                var buffer = new byte[64 * 1024];
                var read = 0;
                // The request's headers, then its body by Content-Length, which the dispatcher always sends.
                while (!Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    read += await stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
                }
                await stream.WriteAsync("HTTP/1.1 500 bad\0nul\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), cancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // stopped
        }
    }

    [Fact]
    public async Task OnlyTheChosenEventTypesOfTheChosenOrganizationsAreSent()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var mine = await Seeder.OrganizationAsync(admin);
        var theirs = await Seeder.OrganizationAsync(admin);
        var webhook = await CreateAsync(admin, receiver, ["device.relocated"], [mine]);
        var myDevice = await Seeder.DeviceAsync(admin, mine);
        var theirDevice = await Seeder.DeviceAsync(admin, theirs);
        await Relocate(admin, theirDevice, "Their rack");
        var status = await admin.PatchJsonAsync($"{Api.Devices}{myDevice["id"]}/", new JsonObject { ["operational_status"] = "maintenance" });
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        await Relocate(admin, myDevice, "My rack");

        // The fan-out goes in feed order, so once the last change has arrived every earlier one has been considered.
        await receiver.WaitUntilAsync(r => r.Accepted.Any(a => a.Body["to"]?.GetValue<string>() == "My rack"), "my device's relocation");
        // A new device's location counts as its first relocation.
        Assert.Equal(["Warehouse A - Section 3", "My rack"], receiver.Arrivals.Select(a => a.Body["to"]!.GetValue<string>()));
        Assert.All(receiver.Arrivals, a => Assert.Equal((Code(myDevice), "device.relocated"), (a.DeviceId, a.Type)));
        Assert.Equal(2, (await DeliveriesAsync(admin, webhook)).Count);
    }

    [Fact]
    public async Task TheSecretIsNeverReturnedAndAWebhookCanBeChangedAndDeleted()
    {
        using var admin = _factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        const string secret = "super-secret-value-that-must-not-leak";
        var created = await admin.PostJsonAsync(Webhooks, new JsonObject
        {
            ["url"] = "https://alerts.example.com/deviceops",
            ["secret"] = secret,
            ["events"] = new JsonArray("device.status_changed"),
            ["organizations"] = new JsonArray(organization),
            ["description"] = "pager",
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadAsStringAsync();
        var webhook = JsonNode.Parse(body)!.AsObject();
        var id = webhook["id"]!.GetValue<int>();
        Assert.Equal($"/api/v1/webhook/{id}/", created.Headers.Location!.ToString());
        Assert.True(webhook["active"]!.GetValue<bool>());
        Assert.Equal([organization], webhook["organizations"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal(["device.status_changed"], webhook["events"]!.AsArray().Select(o => o!.GetValue<string>()));

        var patched = await admin.PatchJsonAsync($"{Webhooks}{id}/", new JsonObject
        {
            ["secret"] = "another-secret-value-also-hidden",
            ["events"] = new JsonArray("*"),
            ["active"] = false,
        });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var patchedBody = await patched.Content.ReadAsStringAsync();
        Assert.False(JsonNode.Parse(patchedBody)!["active"]!.GetValue<bool>());
        Assert.Equal(["*"], JsonNode.Parse(patchedBody)!["events"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal("pager", JsonNode.Parse(patchedBody)!["description"]!.GetValue<string>());

        var texts = new List<string> { body, patchedBody };
        foreach (var url in new[] { Webhooks, $"{Webhooks}{id}/", $"{Webhooks}{id}/deliveries/" })
        {
            var response = await admin.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            texts.Add(await response.Content.ReadAsStringAsync());
        }
        Assert.All(texts, text => Assert.DoesNotContain("secret", text, StringComparison.OrdinalIgnoreCase));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{Webhooks}{id}/")).StatusCode);
        await (await admin.GetAsync($"{Webhooks}{id}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await admin.DeleteAsync($"{Webhooks}{id}/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task BadUrlsEventsAndSecretsAreRefusedAndOnlyAnUnlimitedAdminMayManageWebhooks()
    {
        using var admin = _factory.Admin();
        var response = await admin.PostJsonAsync(Webhooks, new JsonObject
        {
            ["url"] = "ftp://example.com/x",
            ["secret"] = "short",
            ["events"] = new JsonArray("device.exploded"),
            ["organizations"] = new JsonArray("No such organization"),
            ["active"] = "yes",
            ["colour"] = "blue",
        });
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Contains("absolute http or https", problem.Messages("url").Single(), StringComparison.Ordinal);
        Assert.Contains("at least 16", problem.Messages("secret").Single(), StringComparison.Ordinal);
        Assert.Contains("\"device.exploded\" is not an event type", problem.Messages("events").Single(), StringComparison.Ordinal);
        Assert.Single(problem.Messages("organizations"));
        Assert.Single(problem.Messages("active"));
        Assert.Equal(["Unknown field."], problem.Messages("colour"));

        foreach (var (url, events) in new[]
        {
            ("/relative/path", new JsonArray("*")),
            ("not a url", new JsonArray()),
            ("http://\u202e.com/", new JsonArray("*")),   // Uri takes it, with .com as its host
        })
        {
            var bad = await admin.PostJsonAsync(Webhooks, new JsonObject { ["url"] = url, ["secret"] = new string('s', 16), ["events"] = events });
            var details = await bad.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
            Assert.Single(details.Messages("url"));
            Assert.Equal(events.Count == 0, details["errors"]!.AsObject().ContainsKey("events"));
        }
        var missing = await admin.PostJsonAsync(Webhooks, new JsonObject());
        var required = await missing.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.All(["url", "secret", "events"], field => Assert.Equal(["This field is required."], required.Messages(field)));
        var tooLong = await admin.PostJsonAsync(Webhooks, new JsonObject
        {
            ["url"] = "http://127.0.0.1:9/x", ["secret"] = new string('s', 201), ["events"] = new JsonArray("*"),
        });
        Assert.Single((await tooLong.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).Messages("secret"));
        var badStatus = await admin.GetAsync($"{Webhooks}1/deliveries/?status=lost");
        await badStatus.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        using var reader = await _factory.ClientAsync("reader@example.com", ["devices:read", "operations:write"]);
        await (await reader.GetAsync(Webhooks)).AssertProblemAsync(HttpStatusCode.Forbidden, "insufficient_scope");
    }

    [Fact]
    public async Task TwoInstancesOnOneStoreDeliverEachEventExactlyOnceInOrderPerDevice()
    {
        var second = WithWebhookSettings(new DeviceOpsFactory { SharesStoreWith = _factory });
        _others.Add(second);
        await second.InitializeAsync();
        using var first = _factory.Admin();
        using var other = second.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var webhook = await CreateAsync(first, receiver);

        var devices = new List<JsonObject>();
        for (var i = 0; i < 4; i++)
        {
            devices.Add(await Seeder.DeviceAsync(i % 2 == 0 ? first : other));
        }
        await Task.WhenAll(devices.Select(async (device, i) =>
        {
            for (var step = 1; step <= 3; step++)
            {
                await Relocate((i + step) % 2 == 0 ? first : other, device, $"Rack {step}");
            }
        }));
        var expected = new Dictionary<string, List<string>>();
        foreach (var device in devices)
        {
            expected[Code(device)] = await EventIdsAsync(first, Code(device), CreationEvents + 3);
        }

        var total = expected.Values.Sum(ids => ids.Count);
        await receiver.WaitUntilAsync(r => r.Accepted.Select(a => a.EventId).Distinct().Count() == total, $"all {total} events");
        // Long enough for a second instance's duplicate, had there been one, to arrive too.
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        Assert.All(receiver.Arrivals.GroupBy(a => a.EventId), group => Assert.Single(group));
        foreach (var (code, ids) in expected)
        {
            Assert.Equal(ids, receiver.Accepted.Where(a => a.DeviceId == code).Select(a => a.EventId));
        }
        var log = await DeliveriesAsync(first, webhook);
        Assert.Equal(total, log.Count);
        Assert.All(log, d => Assert.Equal(1, d!["attempts"]!.GetValue<int>()));
    }

    /// <summary>
    /// PostgreSQL: a due delivery whose row another transaction holds (another instance claiming
    /// or recording it) is passed over, not waited on: every other device's deliveries go on.
    /// </summary>
    [Fact]
    public async Task ADeliveryLockedByAnotherInstanceHoldsUpNoOtherDevice()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // SQLite has one writer; PostgreSQL's claims meet other instances' locks
        }
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var organization = await Seeder.OrganizationAsync(admin);
        var webhook = await CreateAsync(admin, receiver);
        receiver.Answer = _ => 503;
        var held = await Seeder.DeviceAsync(admin, organization);
        var healthy = await Seeder.DeviceAsync(admin, organization);
        var heldHead = (await EventIdsAsync(admin, Code(held), CreationEvents))[0];
        var healthyEvents = await EventIdsAsync(admin, Code(healthy), CreationEvents);
        // Both heads failed once and wait for their retry, every delivery fanned out: no new event
        // is needed while the row is held (the feed shows none past an open transaction).
        await WaitForLogAsync(admin, webhook, log => log.Count == 2 * CreationEvents
            && Attempts(log, heldHead) == 1 && Attempts(log, healthyEvents[0]) == 1
            && log.All(d => d!["status"]!.GetValue<string>() == "pending"), "both devices' first attempts recorded");

        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var lockHead = new NpgsqlCommand(
            "SELECT id FROM webhook_deliveries WHERE event_id = @event AND lease_owner IS NULL FOR UPDATE", connection, transaction))
        {
            lockHead.Parameters.AddWithValue("event", Guid.Parse(heldHead));
            Assert.NotNull(await lockHead.ExecuteScalarAsync());
        }
        receiver.Answer = body => body["device_id"]!.GetValue<string>() == Code(held) ? 503 : 204;
        Tick();   // both heads are due again; one of them is held

        await receiver.WaitUntilAsync(r => r.Accepted.Count(a => a.DeviceId == Code(healthy)) == CreationEvents,
            "the other device's events while one row is held", seconds: 10);
        Assert.Equal(healthyEvents, receiver.Accepted.Where(a => a.DeviceId == Code(healthy)).Select(a => a.EventId));
        Assert.Equal(1, Attempts(await DeliveriesAsync(admin, webhook), heldHead));

        await transaction.RollbackAsync();
        Tick();
        await WaitForLogAsync(admin, webhook, log => Attempts(log, heldHead) == 2, "the released delivery's next attempt");
    }

    [Fact]
    public async Task ABacklogLargerThanARoundIsDeliveredInOrderNeverMoreThanTheConcurrencyAtOnce()
    {
        // A round claims 8 x the concurrency and sends them that many at a time; a full round's
        // sends go on while the next round claims. Neither may send more at once, nor let a
        // device's second event pass its first.
        var narrow = WithWebhookSettings(new DeviceOpsFactory());
        narrow.Settings["DeviceOps:Webhooks:Concurrency"] = "2";
        _others.Add(narrow);
        await narrow.InitializeAsync();
        using var admin = narrow.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Hold = TimeSpan.FromMilliseconds(20);
        var organization = await Seeder.OrganizationAsync(admin);
        var devices = new List<JsonObject>();
        for (var i = 0; i < 20; i++)
        {
            devices.Add(await Seeder.DeviceAsync(admin, organization));
        }
        await CreateAsync(admin, receiver, events: ["operation.created"]);

        // Two batches, two commits: twenty queues of two, more heads at once than a round takes (16).
        for (var round = 0; round < 2; round++)
        {
            var batch = new JsonArray([.. devices.Select(d => (JsonNode)new JsonObject
            {
                ["device_id"] = Code(d),
                ["operation_type"] = "maintenance",
                ["status"] = "scheduled",
            })]);
            var created = await admin.PostJsonAsync(Api.Operations, batch);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        await receiver.WaitUntilAsync(r => r.Accepted.Count == 2 * devices.Count, "both operations of every device", seconds: 30);
        Assert.Equal(2, receiver.MostInFlight);
        foreach (var device in devices)
        {
            var feed = await EventIdsAsync(admin, Code(device), CreationEvents + 2);
            Assert.Equal(feed.TakeLast(2), receiver.Accepted.Where(a => a.DeviceId == Code(device)).Select(a => a.EventId));
        }
    }

    [Fact]
    public async Task DeletingAWebhookStopsItsPendingDeliveries()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = _ => 500;
        var webhook = await CreateAsync(admin, receiver);
        await Seeder.DeviceAsync(admin);
        await receiver.WaitUntilAsync(r => r.Arrivals.Count == 1, "a failed attempt");
        await WaitForLogAsync(admin, webhook, l => l.Any(d => d!["attempts"]!.GetValue<int>() == 1), "the attempt recorded");

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{Webhooks}{webhook}/")).StatusCode);
        Tick();
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        Assert.Single(receiver.Arrivals);
        await (await admin.GetAsync($"{Webhooks}{webhook}/deliveries/")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task TheJanitorKeepsEventsAPendingDeliveryNeedsAndRemovesTheRest()
    {
        using var admin = _factory.Admin();
        await using var receiver = await WebhookReceiver.StartAsync();
        var stuck = await Seeder.OrganizationAsync(admin);
        var webhook = await CreateAsync(admin, receiver);
        receiver.Answer = body => body["device_id"]!.GetValue<string>().StartsWith("STUCK", StringComparison.Ordinal) ? 500 : 204;
        var stuckDevice = await Seeder.DeviceAsync(admin, stuck, code: Seeder.Unique("STUCK"));
        var fine = await Seeder.DeviceAsync(admin);
        var fineEvents = await EventIdsAsync(admin, Code(fine), CreationEvents);
        var stuckEvents = await EventIdsAsync(admin, Code(stuckDevice), CreationEvents);
        await WaitForLogAsync(admin, webhook, l => l.Count(d => d!["status"]!.GetValue<string>() == "delivered") == fineEvents.Count
            && Attempts(l, stuckEvents[0]) == 1, "the fine device delivered, the stuck one tried");

        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        var (events, deliveries) = await EventsJanitor.CleanUpAsync(db, _factory.Clock.GetUtcNow().UtcDateTime.AddDays(30), default);

        Assert.Equal(fineEvents.Count, deliveries);
        Assert.True(events >= fineEvents.Count);
        Assert.Empty(await EventIdsAsync(admin, Code(fine), 0));
        Assert.Equal(stuckEvents, await EventIdsAsync(admin, Code(stuckDevice), CreationEvents));
        var left = await DeliveriesAsync(admin, webhook);
        Assert.Equal(stuckEvents.Order(), left.Select(d => d!["event_id"]!.GetValue<string>()).Order());
        Assert.All(left, d => Assert.Equal("pending", d!["status"]!.GetValue<string>()));
    }

    // --- helpers ---------------------------------------------------------------------------------

    private static string Code(JsonObject device) => device["device_id"]!.GetValue<string>();

    private static Task<int> CreateAsync(HttpClient admin, WebhookReceiver receiver, string[]? events = null, string[]? organizations = null) =>
        CreateAsync(admin, receiver.Url, receiver.Secret, events, organizations);

    private static async Task<int> CreateAsync(HttpClient admin, string url, string secret, string[]? events = null, string[]? organizations = null)
    {
        var body = new JsonObject
        {
            ["url"] = url,
            ["secret"] = secret,
            ["events"] = new JsonArray([.. (events ?? ["*"]).Select(e => JsonValue.Create(e))]),
        };
        if (organizations is not null)
        {
            body["organizations"] = new JsonArray([.. organizations.Select(o => JsonValue.Create(o))]);
        }
        var response = await admin.PostJsonAsync(Webhooks, body);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.BodyAsync())["id"]!.GetValue<int>();
    }

    private static async Task Relocate(HttpClient client, JsonObject device, string location)
    {
        var response = await client.PatchJsonAsync($"{Api.Devices}{device["id"]}/", new JsonObject { ["location"] = location });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// A device's event ids from the feed, once it shows <paramref name="count"/> of them: on
    /// PostgreSQL the feed shows an event only when every older transaction in the cluster has
    /// ended (another test's migration, say), which can be a moment after the write.
    /// </summary>
    private static async Task<List<string>> EventIdsAsync(HttpClient client, string code, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(8);
        while (true)
        {
            List<string> ids = [.. (await client.GetJsonAsync($"/api/v1/events/?device_id={code}&limit=1000"))["results"]!.AsArray()
                .Select(e => e!["id"]!.GetValue<string>())];
            if (ids.Count >= count || DateTime.UtcNow > deadline)
            {
                Assert.Equal(count, ids.Count);
                return ids;
            }
            await Task.Delay(25);
        }
    }

    /// <summary>A new device from the seeder is three events: created, relocated (its location), configuration_changed.</summary>
    private const int CreationEvents = 3;

    private static async Task<JsonArray> DeliveriesAsync(HttpClient admin, int webhook, string? status = null) =>
        (await admin.GetJsonAsync($"{Webhooks}{webhook}/deliveries/?limit=1000{(status is null ? "" : $"&status={status}")}"))["results"]!.AsArray();

    private static JsonObject ById(JsonArray log, string eventId) =>
        log.Single(d => d!["event_id"]!.GetValue<string>() == eventId)!.AsObject();

    private static int Attempts(JsonArray log, string eventId) =>
        log.FirstOrDefault(d => d!["event_id"]!.GetValue<string>() == eventId)?["attempts"]!.GetValue<int>() ?? -1;

    private static async Task WaitForLogAsync(HttpClient admin, int webhook, Func<JsonArray, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonArray log;
        while (!condition(log = await DeliveriesAsync(admin, webhook)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}; log: {log.ToJsonString()}");
            await Task.Delay(25);
        }
    }

    /// <summary>Moves the server's clock past any retry delay and wakes its dispatcher.</summary>
    private void Tick()
    {
        foreach (var factory in _others.Prepend(_factory))
        {
            factory.Clock.Advance(TimeSpan.FromMinutes(5));
            factory.Services.GetRequiredService<EventSignal>().Pulse();
        }
    }
}
