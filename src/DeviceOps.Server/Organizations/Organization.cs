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

    /// <summary>An organization as the store holds it, read by a hot path without EF Core.</summary>
    internal static Organization Restore(int id, string name) => new() { Id = id, Name = name };

    public int Id { get; private set; }
    public string Name { get; private set; } = "";
    public DateTime CreatedAt { get; private set; }
}
