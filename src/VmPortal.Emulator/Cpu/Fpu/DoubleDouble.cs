namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>
/// Unevaluated sum of two doubles (≈106-bit significand), used by the x87 transcendentals so that their results
/// are accurate to about one 64-bit ulp. Error-free transformations (TwoSum, FMA-based TwoProd) as in Dekker /
/// Knuth; the "accurate" addition variant keeps the relative error near 2^-104 even under cancellation.
/// </summary>
internal readonly struct DoubleDouble
{
    public readonly double Hi, Lo;

    public DoubleDouble(double hi, double lo = 0)
    {
        Hi = hi;
        Lo = lo;
    }

    private static DoubleDouble QuickTwoSum(double a, double b)
    {
        double s = a + b;
        return new DoubleDouble(s, b - (s - a));
    }

    private static DoubleDouble TwoSum(double a, double b)
    {
        double s = a + b;
        double bb = s - a;
        return new DoubleDouble(s, (a - (s - bb)) + (b - bb));
    }

    public static DoubleDouble operator +(DoubleDouble a, DoubleDouble b)
    {
        DoubleDouble s = TwoSum(a.Hi, b.Hi);
        DoubleDouble t = TwoSum(a.Lo, b.Lo);
        s = QuickTwoSum(s.Hi, s.Lo + t.Hi);
        return QuickTwoSum(s.Hi, s.Lo + t.Lo);
    }

    public static DoubleDouble operator -(DoubleDouble a) => new(-a.Hi, -a.Lo);
    public static DoubleDouble operator -(DoubleDouble a, DoubleDouble b) => a + -b;

    public static DoubleDouble operator *(DoubleDouble a, DoubleDouble b)
    {
        double p = a.Hi * b.Hi;
        double e = Math.FusedMultiplyAdd(a.Hi, b.Hi, -p);
        e += a.Hi * b.Lo + a.Lo * b.Hi;
        return QuickTwoSum(p, e);
    }

    public static DoubleDouble operator *(DoubleDouble a, double b)
    {
        double p = a.Hi * b;
        double e = Math.FusedMultiplyAdd(a.Hi, b, -p);
        e += a.Lo * b;
        return QuickTwoSum(p, e);
    }

    public static DoubleDouble operator /(DoubleDouble a, DoubleDouble b)
    {
        double q1 = a.Hi / b.Hi;
        DoubleDouble r = a - b * q1;
        double q2 = r.Hi / b.Hi;
        r -= b * q2;
        double q3 = r.Hi / b.Hi;
        DoubleDouble q = QuickTwoSum(q1, q2);
        return q + new DoubleDouble(q3);
    }

    public static DoubleDouble operator /(DoubleDouble a, double b) => a / new DoubleDouble(b);

    public DoubleDouble Sqrt()
    {
        if (Hi <= 0) return new DoubleDouble(0);
        double s = Math.Sqrt(Hi);
        DoubleDouble ss = new DoubleDouble(s) * s;
        // one Newton step: s + (a − s²)/(2s)
        return new DoubleDouble(s) + (this - ss) / (2 * s);
    }

    public DoubleDouble Abs() => Hi < 0 ? -this : this;

    /// <summary>The value m·2^(e−63) exactly (m a 64-bit integer), provided the exponent stays in double range.</summary>
    public static DoubleDouble FromSignificand(bool negative, ulong m, int e)
    {
        // split m into its top 53 bits (rounded) and the exact signed rest
        double hi = m;                                   // round-to-nearest conversion
        long rest = hi == 18446744073709551616.0
            ? unchecked((long)m)                         // m rounded up to 2^64: rest = m − 2^64
            : unchecked((long)(m - (ulong)hi));
        double lo = rest;                                // |rest| ≤ 2^10: exact
        double scale = Math.ScaleB(1.0, e - 63);
        var r = QuickTwoSum(hi * scale, lo * scale);
        return negative ? -r : r;
    }
}
