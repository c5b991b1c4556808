using System.Globalization;

namespace DeviceOps.Organizations;

public sealed class Organization
{
    private Organization()
    {
    }

    public Organization(string name, DateTime now)
    {
        Name = name;
        CreatedAt = now;
    }

    /// <summary>
    /// How a request names an organization — a device's <c>organization</c>, a token's or a
    /// webhook's <c>organizations</c>, the <c>organization</c> filter: digits are its id, anything
    /// else its name. So no organization may be named with digits only (<see cref="IsDigitsOnly"/>).
    /// </summary>
    public static bool TryParseId(string? reference, out int id)
    {
        id = 0;
        return Http.FieldReader.IsDigits(reference) && int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out id);
    }

    /// <summary>A name <see cref="TryParseId"/> would read as an id (or, too long for one, still only digits).</summary>
    public static bool IsDigitsOnly(string name) => Http.FieldReader.IsDigits(name);

    /// <summary>An organization as the store holds it, read by a hot path without EF Core.</summary>
    internal static Organization Restore(int id, string name) => new() { Id = id, Name = name };

    public int Id { get; private set; }
    public string Name { get; private set; } = "";
    public DateTime CreatedAt { get; private set; }
}
