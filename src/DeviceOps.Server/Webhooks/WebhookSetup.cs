namespace DeviceOps.Webhooks;

public static class WebhookSetup
{
    /// <summary>The dispatcher and the outbox janitor, configured from <c>DeviceOps:Webhooks</c> and <c>DeviceOps:Events</c>.</summary>
    public static IHostApplicationBuilder AddDeviceOpsWebhooks(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<WebhookOptions>(builder.Configuration.GetSection("DeviceOps:Webhooks"));
        builder.Services.Configure<EventRetentionOptions>(builder.Configuration.GetSection("DeviceOps:Events"));
        builder.Services.AddHttpClient(WebhookDispatcher.HttpClientName)
            // A redirect is an answer to fix at the webhook, not to follow with a signed body.
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        builder.Services.AddHostedService<WebhookDispatcher>();
        builder.Services.AddHostedService<EventsJanitor>();
        return builder;
    }
}
