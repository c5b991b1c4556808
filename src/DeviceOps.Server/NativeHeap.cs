using System.Runtime.InteropServices;

namespace DeviceOps;

/// <summary>
/// The C library's heap, which SQLite, the JIT and the runtime allocate from. On glibc each thread
/// that allocates gets an arena of its own, up to eight per core, and memory freed in one arena is
/// not lent to another: under load the thread pool's threads spread SQLite's page caches and
/// statements over fifteen arenas, each keeping its high-water mark. <c>MALLOC_ARENA_MAX=2</c> in
/// the environment measured 20 MB less peak RSS in <c>bench/rss.sh</c> (263 → 243 MB), but only a
/// launcher can set it. The cap set here applies from the start of <c>Main</c>, when the runtime's
/// own threads have made about six arenas already; later threads share those (about 5 MB less).
/// </summary>
internal static class NativeHeap
{
    /// <summary>glibc's <c>M_ARENA_MAX</c> parameter of <c>mallopt</c>.</summary>
    private const int ArenaMax = -8;

    public const int Arenas = 2;

    /// <summary>Caps the arenas unless the environment already chose a number; elsewhere than glibc, nothing.</summary>
    public static void LimitArenas()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null)
        {
            return;
        }
        try
        {
            _ = MallOpt(ArenaMax, Arenas);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Another C library (musl has no arenas to cap).
        }
    }

    // DllImport rather than LibraryImport, whose generated code needs unsafe blocks: two ints
    // cross as they are, with nothing to marshal.
    [DllImport("libc", EntryPoint = "mallopt", ExactSpelling = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int MallOpt(int parameter, int value);
}
