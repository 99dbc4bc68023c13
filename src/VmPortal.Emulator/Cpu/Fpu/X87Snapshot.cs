using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>Eight 80-bit registers stored inline (no allocation).</summary>
[InlineArray(8)]
public struct Float80Registers
{
    private Float80 _element0;
}

/// <summary>
/// The complete x87 state by value. The CPU can take one before an FPU store whose memory write might still
/// fault (FST/FIST/FBSTP/FSTENV/FSAVE…) and put it back if the write raises #PF/#GP, so the instruction restarts
/// with the FPU untouched — an alternative to probing the destination before <see cref="X87.Execute"/>.
/// </summary>
public struct X87Snapshot
{
    internal Float80Registers Registers;
    internal int EmptyMask, Top, ControlWord, StatusWord;
    internal ushort Fcs, Fds, Fop;
    internal uint Fip, Fdp;
}

public sealed partial class X87
{
    public X87Snapshot Capture()
    {
        var s = new X87Snapshot
        {
            EmptyMask = _emptyMask, Top = _top, ControlWord = _cw, StatusWord = _sw,
            Fcs = _fcs, Fds = _fds, Fop = _fop, Fip = _fip, Fdp = _fdp,
        };
        for (int i = 0; i < 8; i++) s.Registers[i] = _regs[i];
        return s;
    }

    public void Restore(in X87Snapshot s)
    {
        _emptyMask = s.EmptyMask;
        _top = s.Top;
        _cw = s.ControlWord;
        _sw = s.StatusWord;
        _fcs = s.Fcs;
        _fds = s.Fds;
        _fop = s.Fop;
        _fip = s.Fip;
        _fdp = s.Fdp;
        for (int i = 0; i < 8; i++) _regs[i] = s.Registers[i];
    }
}
