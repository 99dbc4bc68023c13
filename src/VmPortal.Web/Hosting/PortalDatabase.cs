namespace VmPortal.Web.Hosting;

/// <summary>
/// The connection string the DbContext uses. Set at start by <see cref="DatabaseInitializer"/>: either
/// <c>ConnectionStrings:Portal</c> or the private cluster's. Read lazily so that nothing touches the database earlier.
/// </summary>
public sealed class PortalDatabase
{
    private string? _connectionString;

    public string ConnectionString
    {
        get => _connectionString ?? throw new InvalidOperationException("The database is not initialised yet.");
        set => _connectionString = value;
    }

    public bool IsEmbedded { get; set; }
}
