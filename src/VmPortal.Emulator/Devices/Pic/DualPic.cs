using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Pic;

/// <summary>
/// The PC/AT interrupt controller pair: two Intel 8259A (<see cref="Pic8259"/>), master at 0x20/0x21 and slave at
/// 0xA0/0xA1, the slave's INT output cascaded into master IR2, plus the PIIX edge/level control registers
/// (ELCR) at 0x4D0 (IRQ 0–7; 0, 1, 2 always edge) and 0x4D1 (IRQ 8–15; 8 and 13 always edge).
/// ISA IRQ 2 on the bus is wired to IRQ 9 (the AT redirection), as on real boards.
/// Nothing pending at INTA time yields the spurious vector (IR7 of the master, IR15 of the slave).
/// Guests: SeaBIOS (remaps to 08h/70h), Linux (remaps to 30h…, uses ELCR for PCI IRQs), memtest86+, iPXE.
/// </summary>
public sealed class DualPic : IIrqSink, IInterruptController
{
    public const ushort MasterCommandPort = 0x20, MasterDataPort = 0x21;
    public const ushort SlaveCommandPort = 0xA0, SlaveDataPort = 0xA1;
    public const ushort ElcrMasterPort = 0x4D0, ElcrSlavePort = 0x4D1;
    public const int CascadeIrq = 2;
    public const int SpuriousIrq = 7;
    private const byte ElcrMasterWritable = 0xF8;  // IRQ 0, 1, 2 are edge only
    private const byte ElcrSlaveWritable = 0xDE;   // IRQ 8 and 13 are edge only

    private bool _output;

    public DualPic(IoBus io)
    {
        Master = new Pic8259(true, ElcrMasterWritable, alwaysLevelMask: 1 << CascadeIrq);
        Slave = new Pic8259(false, ElcrSlaveWritable);
        io.Register(MasterCommandPort, 2, Read, Write);
        io.Register(SlaveCommandPort, 2, Read, Write);
        io.Register(ElcrMasterPort, 2, ReadElcr, WriteElcr);
    }

    public Pic8259 Master { get; }
    public Pic8259 Slave { get; }

    /// <summary>Raised (on the machine thread) when the INTR output to the CPU rises: wake a halted CPU.</summary>
    public event Action? InterruptRequested;

    /// <summary>Level of INTR to the CPU.</summary>
    public bool HasPendingInterrupt => _output;

    /// <summary>Machine reset: both chips back to their power-on state.</summary>
    public void Reset()
    {
        Master.Reset();
        Slave.Reset();
        Update();
    }

    /// <summary>Drives ISA IRQ line <paramref name="irq"/> (0–15). Out-of-range lines are ignored.</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq > 15) return;
        if (irq == CascadeIrq) irq = 9;
        if (irq < 8) Master.SetLine(irq, level);
        else Slave.SetLine(irq - 8, level);
        Update();
    }

    public byte AcknowledgeInterrupt()
    {
        int irq = Master.PendingIrq(CascadeIrq);
        byte vector;
        if (irq < 0)
        {
            vector = (byte)(Master.VectorBase + SpuriousIrq);
        }
        else
        {
            Master.Acknowledge(irq);
            if (irq == CascadeIrq)
            {
                int slaveIrq = Slave.PendingIrq();
                if (slaveIrq < 0) vector = (byte)(Slave.VectorBase + SpuriousIrq);
                else
                {
                    Slave.Acknowledge(slaveIrq);
                    vector = (byte)(Slave.VectorBase + slaveIrq);
                }
            }
            else vector = (byte)(Master.VectorBase + irq);
        }
        Update();
        return vector;
    }

    private void Update()
    {
        Master.SetLine(CascadeIrq, Slave.PendingIrq() >= 0);
        bool output = Master.PendingIrq(CascadeIrq) >= 0;
        bool rose = output && !_output;
        _output = output;
        if (rose) InterruptRequested?.Invoke();
    }

    private uint Read(ushort port, int size)
    {
        switch (port)
        {
            case MasterCommandPort: return Master.ReadCommand(PollMaster);
            case MasterDataPort: return Master.ReadData();
            case SlaveCommandPort: return Slave.ReadCommand(PollSlave);
            default: return Slave.ReadData();
        }
    }

    private void Write(ushort port, int size, uint value)
    {
        byte b = (byte)value;
        switch (port)
        {
            case MasterCommandPort: Master.WriteCommand(b); break;
            case MasterDataPort: Master.WriteData(b); break;
            case SlaveCommandPort: Slave.WriteCommand(b); break;
            default: Slave.WriteData(b); break;
        }
        Update();
    }

    // Poll mode: the read acts as the interrupt acknowledge of that chip.
    private int PollMaster()
    {
        int irq = Master.PendingIrq(CascadeIrq);
        if (irq >= 0) Master.Acknowledge(irq);
        if (irq == CascadeIrq)
        {
            int s = Slave.PendingIrq();
            if (s >= 0) Slave.Acknowledge(s);
        }
        return irq;
    }

    private int PollSlave()
    {
        int irq = Slave.PendingIrq();
        if (irq >= 0) Slave.Acknowledge(irq);
        return irq;
    }

    private uint ReadElcr(ushort port, int size) => port == ElcrMasterPort ? Master.Elcr : Slave.Elcr;

    private void WriteElcr(ushort port, int size, uint value)
    {
        if (port == ElcrMasterPort) Master.Elcr = (byte)value; else Slave.Elcr = (byte)value;
        Update();
    }

    /// <summary>Named, versioned snapshot of the pair.</summary>
    public sealed record State(int Version, Pic8259.State Master, Pic8259.State Slave)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, Master.SaveState(), Slave.SaveState());

    public void LoadState(State state)
    {
        if (state.Version != State.CurrentVersion) throw new InvalidDataException($"PIC state version {state.Version} is not supported.");
        Master.LoadState(state.Master);
        Slave.LoadState(state.Slave);
        Update();
    }
}
