namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>Class of an 80-bit extended value, as the x87 sees it (FXAM and operand checks).</summary>
public enum Float80Class : byte
{
    Zero,
    Normal,
    /// <summary>Exponent 0, integer bit 0, fraction non-zero.</summary>
    Denormal,
    /// <summary>Exponent 0, integer bit 1 (the 387+ accepts it as an operand, raising #D).</summary>
    PseudoDenormal,
    Infinity,
    QuietNaN,
    SignalingNaN,
    /// <summary>Unnormal, pseudo-zero, pseudo-NaN, pseudo-infinity: invalid operands on the 387 and later.</summary>
    Unsupported,
}

/// <summary>
/// The x87 double extended-precision format held bit-exactly: sign and 15-bit biased exponent in
/// <see cref="SignExponent"/>, the 64-bit significand with its explicit integer bit (bit 63) in
/// <see cref="Significand"/>.
/// </summary>
public readonly struct Float80 : IEquatable<Float80>
{
    public const int Bias = 16383;
    public const int MaxExponent = 0x7FFF;
    public const ulong IntegerBit = 0x8000_0000_0000_0000UL;
    public const ulong QuietBit = 0x4000_0000_0000_0000UL;

    public readonly ulong Significand;
    public readonly ushort SignExponent;

    public Float80(ushort signExponent, ulong significand)
    {
        SignExponent = signExponent;
        Significand = significand;
    }

    public Float80(bool negative, int biasedExponent, ulong significand)
    {
        SignExponent = (ushort)((negative ? 0x8000 : 0) | (biasedExponent & 0x7FFF));
        Significand = significand;
    }

    public bool Sign => (SignExponent & 0x8000) != 0;
    public int Exponent => SignExponent & 0x7FFF;

    /// <summary>The "real indefinite" QNaN the x87 produces for masked invalid operations.</summary>
    public static Float80 Indefinite => new(0xFFFF, 0xC000_0000_0000_0000UL);
    public static Float80 Zero(bool negative) => new(negative, 0, 0);
    public static Float80 Infinity(bool negative) => new(negative, MaxExponent, IntegerBit);
    public static Float80 One => new(false, Bias, IntegerBit);

    public Float80Class Classify()
    {
        int e = Exponent;
        bool integerBit = (Significand & IntegerBit) != 0;
        if (e == 0)
        {
            if (Significand == 0) return Float80Class.Zero;
            return integerBit ? Float80Class.PseudoDenormal : Float80Class.Denormal;
        }
        if (!integerBit) return Float80Class.Unsupported;
        if (e == MaxExponent)
        {
            ulong fraction = Significand & ~IntegerBit;
            if (fraction == 0) return Float80Class.Infinity;
            return (fraction & QuietBit) != 0 ? Float80Class.QuietNaN : Float80Class.SignalingNaN;
        }
        return Float80Class.Normal;
    }

    public bool IsNaN => Exponent == MaxExponent && (Significand & IntegerBit) != 0 && (Significand << 1) != 0;
    public bool IsSignalingNaN => IsNaN && (Significand & QuietBit) == 0;
    public bool IsZero => Exponent == 0 && Significand == 0;
    public bool IsInfinity => Exponent == MaxExponent && Significand == IntegerBit;
    /// <summary>Denormal or pseudo-denormal (exponent 0, non-zero significand).</summary>
    public bool IsDenormalOperand => Exponent == 0 && Significand != 0;

    public Float80 Negate() => new((ushort)(SignExponent ^ 0x8000), Significand);
    public Float80 Abs() => new((ushort)(SignExponent & 0x7FFF), Significand);
    public Float80 Quieted() => new(SignExponent, Significand | QuietBit);

    public void WriteTo(Span<byte> destination)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(destination, Significand);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], SignExponent);
    }

    public static Float80 ReadFrom(ReadOnlySpan<byte> source) =>
        new(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(source));

    /// <summary>Nearest double (round to nearest even); for debuggers, tests and the transcendental paths.</summary>
    public double ToDouble()
    {
        var env = new FpuEnv(FpuEnv.DefaultControlWord);
        ulong bits = SoftFloat80.ToFloat64Bits(this, ref env);
        return BitConverter.UInt64BitsToDouble(bits);
    }

    /// <summary>Exact conversion of a double (no exceptions; SNaNs are kept signalling).</summary>
    public static Float80 FromDouble(double value)
    {
        var env = new FpuEnv(FpuEnv.DefaultControlWord);
        return SoftFloat80.FromFloat64Bits(BitConverter.DoubleToUInt64Bits(value), ref env, quietSignaling: false);
    }

    public bool Equals(Float80 other) => SignExponent == other.SignExponent && Significand == other.Significand;
    public override bool Equals(object? obj) => obj is Float80 f && Equals(f);
    public override int GetHashCode() => HashCode.Combine(SignExponent, Significand);
    public static bool operator ==(Float80 a, Float80 b) => a.Equals(b);
    public static bool operator !=(Float80 a, Float80 b) => !a.Equals(b);
    public override string ToString() => $"{SignExponent:X4}:{Significand:X16}";
}
