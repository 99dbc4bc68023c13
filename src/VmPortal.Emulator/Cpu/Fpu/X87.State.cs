using System.Buffers.Binary;

namespace VmPortal.Emulator.Cpu.Fpu;

// FSTENV/FLDENV/FSAVE/FRSTOR (Intel SDM vol. 1 §8.1.10, figures 8-9..8-12) and FXSAVE/FXRSTOR (vol. 2 FXSAVE, table
// 3-53, 32-bit layout) images.
public sealed partial class X87
{
    private const int FxMxcsrDefault = 0x1F80;

    /// <summary>
    /// Writes the environment (14 bytes 16-bit, 28 bytes 32-bit). Protected-mode layouts hold selector:offset
    /// pointers; real/V86 layouts hold 20/32-bit linear pointers (selector·16 + offset) and the opcode.
    /// Reserved halves of the 32-bit layout are stored as FFFFh like the P6.
    /// </summary>
    private void StoreEnvironment(Span<byte> d, bool op32, bool protectedMode)
    {
        uint ipLinear = ((uint)_fcs << 4) + _fip;
        uint dpLinear = ((uint)_fds << 4) + _fdp;
        if (op32)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d, 0xFFFF_0000u | ControlWord);
            BinaryPrimitives.WriteUInt32LittleEndian(d[4..], 0xFFFF_0000u | StatusWord);
            BinaryPrimitives.WriteUInt32LittleEndian(d[8..], 0xFFFF_0000u | TagWord);
            if (protectedMode)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(d[12..], _fip);
                BinaryPrimitives.WriteUInt32LittleEndian(d[16..], _fcs | ((uint)(_fop & 0x7FF) << 16));
                BinaryPrimitives.WriteUInt32LittleEndian(d[20..], _fdp);
                BinaryPrimitives.WriteUInt32LittleEndian(d[24..], 0xFFFF_0000u | _fds);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(d[12..], 0xFFFF_0000u | (ipLinear & 0xFFFF));
                BinaryPrimitives.WriteUInt32LittleEndian(d[16..], ((ipLinear >> 16) << 12) | (uint)(_fop & 0x7FF));
                BinaryPrimitives.WriteUInt32LittleEndian(d[20..], 0xFFFF_0000u | (dpLinear & 0xFFFF));
                BinaryPrimitives.WriteUInt32LittleEndian(d[24..], (dpLinear >> 16) << 12);
            }
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d, ControlWord);
            BinaryPrimitives.WriteUInt16LittleEndian(d[2..], StatusWord);
            BinaryPrimitives.WriteUInt16LittleEndian(d[4..], TagWord);
            if (protectedMode)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(d[6..], (ushort)_fip);
                BinaryPrimitives.WriteUInt16LittleEndian(d[8..], _fcs);
                BinaryPrimitives.WriteUInt16LittleEndian(d[10..], (ushort)_fdp);
                BinaryPrimitives.WriteUInt16LittleEndian(d[12..], _fds);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(d[6..], (ushort)ipLinear);
                BinaryPrimitives.WriteUInt16LittleEndian(d[8..], (ushort)((((ipLinear >> 16) & 0xF) << 12) | (uint)(_fop & 0x7FF)));
                BinaryPrimitives.WriteUInt16LittleEndian(d[10..], (ushort)dpLinear);
                BinaryPrimitives.WriteUInt16LittleEndian(d[12..], (ushort)(((dpLinear >> 16) & 0xF) << 12));
            }
        }
    }

    private void LoadEnvironment(ReadOnlySpan<byte> s, bool op32, bool protectedMode)
    {
        int cw, sw, tw;
        if (op32)
        {
            cw = BinaryPrimitives.ReadUInt16LittleEndian(s);
            sw = BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
            tw = BinaryPrimitives.ReadUInt16LittleEndian(s[8..]);
            if (protectedMode)
            {
                _fip = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
                uint w = BinaryPrimitives.ReadUInt32LittleEndian(s[16..]);
                _fcs = (ushort)w;
                _fop = (ushort)((w >> 16) & 0x7FF);
                _fdp = BinaryPrimitives.ReadUInt32LittleEndian(s[20..]);
                _fds = BinaryPrimitives.ReadUInt16LittleEndian(s[24..]);
            }
            else
            {
                uint w = BinaryPrimitives.ReadUInt32LittleEndian(s[16..]);
                _fip = (BinaryPrimitives.ReadUInt32LittleEndian(s[12..]) & 0xFFFF) | (((w >> 12) & 0xFFFF) << 16);
                _fop = (ushort)(w & 0x7FF);
                _fcs = 0;
                _fdp = (BinaryPrimitives.ReadUInt32LittleEndian(s[20..]) & 0xFFFF) |
                       (((BinaryPrimitives.ReadUInt32LittleEndian(s[24..]) >> 12) & 0xFFFF) << 16);
                _fds = 0;
            }
        }
        else
        {
            cw = BinaryPrimitives.ReadUInt16LittleEndian(s);
            sw = BinaryPrimitives.ReadUInt16LittleEndian(s[2..]);
            tw = BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
            if (protectedMode)
            {
                _fip = BinaryPrimitives.ReadUInt16LittleEndian(s[6..]);
                _fcs = BinaryPrimitives.ReadUInt16LittleEndian(s[8..]);
                _fdp = BinaryPrimitives.ReadUInt16LittleEndian(s[10..]);
                _fds = BinaryPrimitives.ReadUInt16LittleEndian(s[12..]);
            }
            else
            {
                uint w = BinaryPrimitives.ReadUInt16LittleEndian(s[8..]);
                _fip = BinaryPrimitives.ReadUInt16LittleEndian(s[6..]) | ((w >> 12) << 16);
                _fop = (ushort)(w & 0x7FF);
                _fcs = 0;
                _fdp = BinaryPrimitives.ReadUInt16LittleEndian(s[10..]) |
                       ((uint)(BinaryPrimitives.ReadUInt16LittleEndian(s[12..]) >> 12) << 16);
                _fds = 0;
            }
        }
        SetStatusAndTags(cw, sw, tw);
    }

    private void SetStatusAndTags(int cw, int sw, int tw)
    {
        _cw = (cw & FpuControl.WritableBits) | FpuControl.ReservedOnes;
        _top = (sw >> FpuStatus.TopShift) & 7;
        _sw = sw & ~FpuStatus.TopMask;
        int empty = 0;
        for (int i = 0; i < 8; i++)
            if (((tw >> (2 * i)) & 3) == 3) empty |= 1 << i;
        _emptyMask = empty;
        UpdateSummary();
    }

    private void Save(Span<byte> d, bool op32, bool protectedMode)
    {
        int env = op32 ? 28 : 14;
        StoreEnvironment(d, op32, protectedMode);
        for (int i = 0; i < 8; i++) St(i).WriteTo(d[(env + 10 * i)..]);
        Reset();                                             // FNSAVE reinitialises the FPU
    }

    private void Restore(ReadOnlySpan<byte> s, bool op32, bool protectedMode)
    {
        int env = op32 ? 28 : 14;
        LoadEnvironment(s, op32, protectedMode);
        for (int i = 0; i < 8; i++) _regs[Phys(i)] = Float80.ReadFrom(s[(env + 10 * i)..]);
    }

    /// <summary>
    /// FXSAVE (32-bit layout): FCW, FSW, abridged FTW (1 bit per physical register, 1 = valid), FOP, FIP, FCS,
    /// FDP, FDS, MXCSR=1F80h, MXCSR_MASK=0 (no SSE), ST0..ST7 in 16-byte slots. Bytes 160..511 (XMM registers and
    /// reserved) are left untouched for the CPU to own.
    /// </summary>
    public void FxSave(Span<byte> image512, in FpuContext ctx)
    {
        if (image512.Length < 512) throw new ArgumentException("FXSAVE needs 512 bytes", nameof(image512));
        Span<byte> d = image512;
        d[..160].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, ControlWord);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], StatusWord);
        d[4] = (byte)(~_emptyMask & 0xFF);
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], (ushort)(_fop & 0x7FF));
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], _fip);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], _fcs);
        BinaryPrimitives.WriteUInt32LittleEndian(d[16..], _fdp);
        BinaryPrimitives.WriteUInt16LittleEndian(d[20..], _fds);
        BinaryPrimitives.WriteUInt32LittleEndian(d[24..], FxMxcsrDefault);
        for (int i = 0; i < 8; i++) St(i).WriteTo(d[(32 + 16 * i)..]);
    }

    public void FxRestore(ReadOnlySpan<byte> image512)
    {
        if (image512.Length < 512) throw new ArgumentException("FXRSTOR needs 512 bytes", nameof(image512));
        ReadOnlySpan<byte> s = image512;
        int cw = BinaryPrimitives.ReadUInt16LittleEndian(s);
        int sw = BinaryPrimitives.ReadUInt16LittleEndian(s[2..]);
        int abridged = s[4];
        _fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(s[6..]) & 0x7FF);
        _fip = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        _fcs = BinaryPrimitives.ReadUInt16LittleEndian(s[12..]);
        _fdp = BinaryPrimitives.ReadUInt32LittleEndian(s[16..]);
        _fds = BinaryPrimitives.ReadUInt16LittleEndian(s[20..]);
        int tw = 0;
        for (int i = 0; i < 8; i++)
            if ((abridged & (1 << i)) == 0) tw |= 3 << (2 * i);
        SetStatusAndTags(cw, sw, tw);
        for (int i = 0; i < 8; i++) _regs[Phys(i)] = Float80.ReadFrom(s[(32 + 16 * i)..]);
    }
}
