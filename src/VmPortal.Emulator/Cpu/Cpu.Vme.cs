namespace VmPortal.Emulator.Cpu;

// Virtual-8086 mode extensions (CR4.VME) and protected-mode virtual interrupts (CR4.PVI), Intel SDM vol. 3 ch. 20.
// With VME, V86 code running with IOPL < 3 executes CLI/STI/PUSHF/POPF/IRET (16-bit forms) on the virtual
// interrupt flag EFLAGS.VIF instead of trapping to the monitor (#GP only when it must see a pending virtual
// interrupt, EFLAGS.VIP, become deliverable, or for TF), and INT n is redirected to the V86 program's own
// real-mode vector table when bit n of the TSS interrupt redirection bitmap (the 32 bytes below the I/O
// permission bitmap) is clear. With PVI, CLI/STI at CPL 3 with IOPL < 3 in protected mode work on VIF likewise.
// CPUID leaf 1 reports VME. Hardware interrupts are unaffected: IF still gates them, VIF/VIP are for the monitor.
public sealed partial class Cpu
{
    private bool VmeActive => _v86 && (_cr4 & CR4_VME) != 0;

    /// <summary>CLI/STI when IOPL does not allow them: VIF under VME (V86) or PVI (CPL 3), else #GP(0).</summary>
    private void VirtualCliSti(bool set)
    {
        bool virt = _v86 ? (_cr4 & CR4_VME) != 0 : _pe && _cpl == 3 && (_cr4 & CR4_PVI) != 0;
        if (!virt) throw Fault(13, 0);
        if (!set) { _flags &= ~VIF; return; }
        if ((_flags & VIP) != 0) throw Fault(13, 0); // the monitor delivers the pending virtual interrupt
        _flags |= VIF;
    }

    /// <summary>PUSHF in V86 mode with IOPL &lt; 3: with VME the 16-bit form pushes FLAGS with IF = VIF and IOPL = 3.</summary>
    private void PushfVme()
    {
        if (!VmeActive || _opSize != 2) throw Fault(13, 0);
        uint f = GetFlags() & 0xFFFF & ~(IF | IOPL);
        if ((_flags & VIF) != 0) f |= IF;
        Push16((ushort)(f | IOPL));
    }

    /// <summary>
    /// The flags image popped by a 16-bit POPF/IRET in V86 mode with IOPL &lt; 3 under VME: #GP(0) when it sets TF,
    /// or sets IF while a virtual interrupt is pending; otherwise IF goes to VIF and the other bits of FLAGS except
    /// IOPL are loaded.
    /// </summary>
    private void CheckVmeFlags(uint fl)
    {
        if ((fl & TF) != 0 || ((fl & IF) != 0 && (_flags & VIP) != 0)) throw Fault(13, 0);
    }

    private void LoadVmeFlags(uint fl)
    {
        MaterializeFlags();
        const uint mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
        uint f = (_flags & ~(mask | VIF)) | (fl & mask) | 2;
        if ((fl & IF) != 0) f |= VIF;
        _flags = f;
        _checkEvents = true;
    }

    private void PopfVme()
    {
        if (!VmeActive || _opSize != 2) throw Fault(13, 0);
        uint fl = PeekStack(2, 0);
        CheckVmeFlags(fl);
        SetStackPtr(StackPtr + 2);
        LoadVmeFlags(fl);
    }

    /// <summary>16-bit IRET in V86 mode with IOPL &lt; 3 under VME (the 32-bit form and VME off: #GP(0)).</summary>
    private void IretVme(int osz)
    {
        if (!VmeActive || osz != 2) throw Fault(13, 0);
        uint ip = PeekStack(2, 0);
        ushort cs = (ushort)PeekStack(2, 2);
        uint fl = PeekStack(2, 4);
        CheckVmeFlags(fl);
        SetStackPtr(StackPtr + 6);
        LoadCsReal(cs);
        _eip = ip;
        LoadVmeFlags(fl);
    }

    /// <summary>
    /// INT n in V86 mode with VME: true when bit n of the TSS redirection bitmap is clear and the interrupt was
    /// delivered through the V86 program's vector table at linear 0 (FLAGS, CS, IP pushed on its stack; with
    /// IOPL &lt; 3 the pushed IF is VIF, the pushed IOPL is 3 and VIF is cleared, else IF is cleared; TF cleared).
    /// </summary>
    private bool RedirectV86Interrupt(int vector)
    {
        if ((_trAttr & 0x08) == 0 || _trLimit < 0x67) throw Fault(13, 0);
        uint mapBase = SysRead16(_trBase + 0x66);
        uint off = mapBase - 32 + (uint)(vector >> 3);
        if (mapBase < 32 || off > _trLimit) throw Fault(13, 0);
        if ((SysRead8(_trBase + off) & (1 << (vector & 7))) != 0) return false;
        bool iopl3 = (_flags & IOPL) == IOPL;
        uint ip = ReadLin16((uint)vector * 4);
        ushort sel = ReadLin16((uint)vector * 4 + 2);
        uint f = GetFlags() & 0xFFFF;
        if (!iopl3)
        {
            f = (f & ~IF) | IOPL;
            if ((_flags & VIF) != 0) f |= IF;
        }
        // Write the frame before changing anything (a #SS/#PF leaves the state as it was).
        uint sp = _r[ESP] & 0xFFFF;
        Write16(SS, (sp - 2) & 0xFFFF, (ushort)f);
        Write16(SS, (sp - 4) & 0xFFFF, _sel[CS]);
        Write16(SS, (sp - 6) & 0xFFFF, (ushort)_eip);
        _r[ESP] = (_r[ESP] & 0xFFFF_0000) | ((sp - 6) & 0xFFFF);
        _flags &= ~(TF | RF | (iopl3 ? IF : VIF));
        _traceArmed = false;
        LoadCsReal(sel);
        _eip = ip;
        _checkEvents = true;
        return true;
    }
}
