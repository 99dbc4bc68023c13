using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Platform;

/// <summary>
/// Tiny hand-assembled firmware images (4 KiB, given as <c>--bios</c>) for machine tests that need no disk or device:
/// the reset vector at F000:FFF0 far-jumps to F000:F000, the image's first byte (the low copy below 1 MiB).
/// </summary>
public static class TestGuests
{
    public const int Size = 4096;

    /// <summary>Writes 'x' to port 0xE9, busy-waits 65535 LOOP iterations, repeats forever.</summary>
    public static byte[] Ticker() => Image(new byte[]
    {
        0xB0, 0x78,             // mov al, 'x'
        0xE6, 0xE9,             // L: out 0xE9, al
        0xB9, 0xFF, 0xFF,       // mov cx, 0xFFFF
        0xE2, 0xFE,             // D: loop D
        0xEB, 0xF7,             // jmp L
    });

    /// <summary>Loads an empty IDT (limit 0) and executes INT3: #GP, then #DF, then a triple fault.</summary>
    public static byte[] TripleFault()
    {
        var image = Image(new byte[]
        {
            0xFA,                         // cli
            0x2E, 0x0F, 0x01, 0x1E, 0xE0, 0xFF, // lidt cs:[0xFFE0] (CS = F000 → 0xFFFE0, image offset 0xFE0)
            0xCC,                         // int3
        });
        // 6 zero bytes at 0xFE0: IDT limit 0, base 0.
        return image;
    }

    /// <summary>Writes "H" to port 0xE9, then CLI; HLT forever: a guest that only idles.</summary>
    public static byte[] Halt() => Image(new byte[]
    {
        0xB0, 0x48,             // mov al, 'H'
        0xE6, 0xE9,             // out 0xE9, al
        0xFA,                   // cli
        0xF4,                   // L: hlt
        0xEB, 0xFD,             // jmp L
    });

    private static byte[] Image(byte[] code)
    {
        var image = new byte[Size];
        code.CopyTo(image, 0);
        // Reset vector (offset 0xFF0 = F000:FFF0): jmp far F000:F000.
        byte[] reset = { 0xEA, 0x00, 0xF0, 0x00, 0xF0 };
        reset.CopyTo(image, 0xFF0);
        return image;
    }

    /// <summary>Writes <paramref name="image"/> to a temporary file and returns its path.</summary>
    public static string WriteTemp(byte[] image, string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), "vmportal-tests");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{name}-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, image);
        return path;
    }

    /// <summary>Null when the real CPU is merged; otherwise the skip reason for tests that execute guest code.</summary>
    public static readonly string? CpuMissing = ProbeCpu();

    private static string? ProbeCpu()
    {
        try
        {
            new global::VmPortal.Emulator.Cpu.Cpu(new PhysicalMemory(1 << 20), new IoBus()).Reset();
            return null;
        }
        catch (NotImplementedException)
        {
            return "needs the CPU (issue 3): src/VmPortal.Emulator/Cpu/Cpu.cs is still the placeholder";
        }
    }
}

/// <summary>A fact that runs guest code: skipped, with the reason, while the CPU is the placeholder.</summary>
public sealed class CpuFactAttribute : FactAttribute
{
    public CpuFactAttribute()
    {
        if (TestGuests.CpuMissing != null) Skip = TestGuests.CpuMissing;
    }
}
