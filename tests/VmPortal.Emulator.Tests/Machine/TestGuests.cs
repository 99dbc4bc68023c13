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

    /// <summary>Writes "R" to port 0xE9, asks for a reset through <paramref name="port"/> (0xCF9, 0x92 or the i8042's
    /// 0x64), then triple-faults on purpose as SeaBIOS's reboot does when no reset port worked.</summary>
    public static byte[] ResetThenTripleFault(int port)
    {
        byte[] ask = port switch
        {
            0xCF9 => [0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE], // mov dx, 0xCF9; mov al, 6; out dx, al
            0x92 => [0xB0, 0x01, 0xE6, 0x92],             // mov al, 1; out 0x92, al (fast reset)
            0x64 => [0xB0, 0xFE, 0xE6, 0x64],             // mov al, 0xFE; out 0x64, al (pulse the reset line)
            _ => throw new ArgumentOutOfRangeException(nameof(port)),
        };
        return Image([
            0xB0, 0x52, 0xE6, 0xE9,                       // mov al, 'R'; out 0xE9, al
            .. ask,
            0xFA, 0x2E, 0x0F, 0x01, 0x1E, 0xE0, 0xFF,     // cli; lidt cs:[0xFFE0] (limit 0)
            0xCC,                                         // int3
        ]);
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

    /// <summary>Polls COM1's line status and copies every received byte to port 0xE9.</summary>
    public static byte[] SerialEcho() => Image(new byte[]
    {
        0xBA, 0xFD, 0x03,       // L: mov dx, 0x3FD (LSR)
        0xEC,                   // in al, dx
        0xA8, 0x01,             // test al, 1 (data ready)
        0x74, 0xF8,             // jz L
        0xBA, 0xF8, 0x03,       // mov dx, 0x3F8 (RBR)
        0xEC,                   // in al, dx
        0xE6, 0xE9,             // out 0xE9, al
        0xEB, 0xF0,             // jmp L
    });

    /// <summary>Polls the i8042 status and copies every byte from port 0x60 (translated set 1 scancodes) to port 0xE9.</summary>
    public static byte[] KeyboardEcho() => Image(new byte[]
    {
        0xE4, 0x64,             // L: in al, 0x64
        0xA8, 0x01,             // test al, 1 (output buffer full)
        0x74, 0xFA,             // jz L
        0xE4, 0x60,             // in al, 0x60
        0xE6, 0xE9,             // out 0xE9, al
        0xEB, 0xF4,             // jmp L
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

    /// <summary>CPUID leaf 1 EDX as the emulated CPU reports it (0 while the CPU is the placeholder).</summary>
    public static readonly uint CpuidFeatures = ProbeCpuid();

    public const uint CpuidFpu = 1u << 0, CpuidCx8 = 1u << 8, CpuidCmov = 1u << 15, CpuidFxsr = 1u << 24;

    /// <summary>
    /// Null when the CPU reports every feature in <paramref name="features"/>; otherwise a skip reason naming the
    /// missing ones and the guest that needs them.
    /// </summary>
    public static string? CpuLacks(uint features, string guest)
    {
        if (CpuMissing != null) return CpuMissing;
        uint missing = features & ~CpuidFeatures;
        if (missing == 0) return null;
        var names = new List<string>();
        if ((missing & CpuidFpu) != 0) names.Add("FPU (x87)");
        if ((missing & CpuidCx8) != 0) names.Add("CX8");
        if ((missing & CpuidCmov) != 0) names.Add("CMOV");
        if ((missing & CpuidFxsr) != 0) names.Add("FXSR (FXSAVE/FXRSTOR)");
        return $"{guest} needs CPUID {string.Join(", ", names)}, which the emulated CPU does not report yet";
    }

    private static uint ProbeCpuid()
    {
        try
        {
            var memory = new PhysicalMemory(1 << 20);
            // At the reset vector: mov eax, 1; cpuid; hlt.
            var image = new byte[Size];
            new byte[] { 0x66, 0xB8, 0x01, 0x00, 0x00, 0x00, 0x0F, 0xA2, 0xF4 }.CopyTo(image, 0xFF0);
            VmPortal.Emulator.Firmware.SystemBios.Map(memory, image);
            var cpu = new global::VmPortal.Emulator.Cpu.Cpu(memory, new IoBus());
            cpu.Reset();
            cpu.Run(10);
            return cpu.Edx;
        }
        catch (NotImplementedException)
        {
            return 0;
        }
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
