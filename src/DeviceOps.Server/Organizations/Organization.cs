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

    public int Id { get; private set; }
    public string Name { get; private set; } = "";
    public DateTime CreatedAt { get; private set; }
}
