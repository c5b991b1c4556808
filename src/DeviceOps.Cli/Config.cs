using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeviceOps.Cli;

/// <summary>Where the tool finds its server: DEVICEOPS_URL and DEVICEOPS_TOKEN, else the file `deviceops login` wrote.</summary>
public sealed record Settings(
    [property: JsonPropertyName("url")] string? Url,
    [property: JsonPropertyName("token")] string? Token);

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(Settings))]
internal sealed partial class SettingsJson : JsonSerializerContext
{
}

/// <summary>A problem of the user's setup or input, reported as one message with a non-zero exit.</summary>
public sealed class UsageException(string message, int exitCode = 2) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

public static class Config
{
    public const string UrlVariable = "DEVICEOPS_URL";
    public const string TokenVariable = "DEVICEOPS_TOKEN";

    /// <summary>$XDG_CONFIG_HOME/deviceops/config.json, or ~/.config/deviceops/config.json.</summary>
    public static string FilePath(CliEnvironment environment)
    {
        var root = environment.Variable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(environment.Variable("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(root, "deviceops", "config.json");
    }

    public static Settings Load(CliEnvironment environment)
    {
        var file = FilePath(environment);
        Settings stored = new(null, null);
        if (File.Exists(file))
        {
            try
            {
                stored = JsonSerializer.Deserialize(File.ReadAllText(file), SettingsJson.Default.Settings) ?? stored;
            }
            catch (JsonException ex)
            {
                throw new UsageException($"{file} is not valid JSON ({ex.Message}); run `deviceops login` again.");
            }
        }
        var url = environment.Variable(UrlVariable) is { Length: > 0 } envUrl ? envUrl : stored.Url;
        var token = environment.Variable(TokenVariable) is { Length: > 0 } envToken ? envToken : stored.Token;
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new UsageException($"No server configured: set {UrlVariable} (and {TokenVariable}) or run `deviceops login --url URL --token TOKEN`.");
        }
        if (string.IsNullOrWhiteSpace(token))
        {
            throw new UsageException($"No token configured: set {TokenVariable} or run `deviceops login --url URL --token TOKEN`.");
        }
        return new(url, token);
    }

    /// <summary>Writes the file readable by its owner only (0600): it holds a bearer token.</summary>
    public static string Save(CliEnvironment environment, Settings settings)
    {
        var file = FilePath(environment);
        var folder = Path.GetDirectoryName(file)!;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
        }
        else
        {
            Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var temporary = file + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, settings, SettingsJson.Default.Settings);
        }
        if (!OperatingSystem.IsWindows())
        {
            // A left-over temporary file keeps its old mode through FileMode.Create; set it for sure.
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        File.Move(temporary, file, overwrite: true);
        return file;
    }

    public static Uri BaseAddress(string url)
    {
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"\"{url}\" is not an http(s) URL.");
        }
        return uri;
    }
}
