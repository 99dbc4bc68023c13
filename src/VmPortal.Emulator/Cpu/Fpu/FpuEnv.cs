namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>x87 status-word bits (also used as the exception bits collected while computing).</summary>
public static class FpuStatus
{
    public const int Invalid = 0x0001;       // IE
    public const int Denormal = 0x0002;      // DE
    public const int ZeroDivide = 0x0004;    // ZE
    public const int Overflow = 0x0008;      // OE
    public const int Underflow = 0x0010;     // UE
    public const int Precision = 0x0020;     // PE
    public const int StackFault = 0x0040;    // SF
    public const int ErrorSummary = 0x0080;  // ES
    public const int C0 = 0x0100;
    public const int C1 = 0x0200;
    public const int C2 = 0x0400;
    public const int TopMask = 0x3800;
    public const int TopShift = 11;
    public const int C3 = 0x4000;
    public const int Busy = 0x8000;          // B (mirrors ES on the 387 and later)
    public const int ExceptionMask = 0x003F;
    public const int ConditionMask = C0 | C1 | C2 | C3;
}

/// <summary>x87 control-word fields.</summary>
public static class FpuControl
{
    public const int PrecisionShift = 8;      // PC: 00 = 24 bits, 10 = 53 bits, 11 = 64 bits (01 reserved: 64)
    public const int RoundingShift = 10;      // RC: 00 nearest-even, 01 down, 10 up, 11 toward zero
    public const int WritableBits = 0x1F3F;   // masks, PC, RC, IC (bit 12, ignored by the 387 and later)
    public const int ReservedOnes = 0x0040;   // bit 6 reads back as 1
    public const int RoundNearest = 0, RoundDown = 1, RoundUp = 2, RoundTowardZero = 3;
}

/// <summary>
/// Rounding environment for one operation, taken from the control word, and the exception bits it raised.
/// <see cref="Flags"/> collects IE/DE/ZE/OE/UE/PE plus <see cref="FpuStatus.C1"/> when the result was rounded
/// up in magnitude (the x87 reports that in C1).
/// </summary>
public struct FpuEnv
{
    public const ushort DefaultControlWord = 0x037F;

    public int Flags;
    public readonly int Masks;
    public readonly int PrecisionBits;
    public readonly int Rounding;

    public FpuEnv(int controlWord)
    {
        Flags = 0;
        Masks = controlWord & FpuStatus.ExceptionMask;
        Rounding = (controlWord >> FpuControl.RoundingShift) & 3;
        PrecisionBits = ((controlWord >> FpuControl.PrecisionShift) & 3) switch { 0 => 24, 2 => 53, _ => 64 };
    }

    public FpuEnv(int controlWord, int precisionBits) : this(controlWord) => PrecisionBits = precisionBits;

    public readonly bool IsMasked(int exception) => (Masks & exception) != 0;
}
