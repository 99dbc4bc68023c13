namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// The 82540EM's internal PHY (a Marvell 88E1011-compatible, PHY ID 0x01410C2x at MDIO address 1), reached through
/// the MAC's MDIC register. Registers: 0 control (reset and restart-autonegotiation bits self-clear), 1 status (link,
/// autonegotiation complete), 2/3 ID, 4 advertisement, 5 link partner ability, 9/10 1000BASE-T control/status,
/// 17 PHY specific status (1000 Mb/s, full duplex, resolved, link). The link follows the host's cable.
/// Guests: Linux e1000 (PHY detection, autonegotiation wait, link check in its watchdog).
/// </summary>
public sealed class E1000Phy
{
    public const int Address = 1;
    public const int Control = 0, StatusReg = 1, Id1 = 2, Id2 = 3, Advertise = 4, LinkPartner = 5, GigControl = 9,
        GigStatus = 10, SpecificStatus = 17;
    private const ushort StatusLink = 0x0004, StatusAutonegComplete = 0x0020;

    private readonly ushort[] _regs = new ushort[32];
    private bool _link = true;

    public E1000Phy() => Reset();

    public void Reset()
    {
        Array.Clear(_regs);
        _regs[Control] = 0x1140;           // autonegotiation enabled, full duplex, 1000 Mb/s
        _regs[Id1] = 0x0141;
        _regs[Id2] = 0x0C20;
        _regs[Advertise] = 0x0DE1;
        _regs[LinkPartner] = 0x45E1;
        _regs[6] = 0x0001;
        _regs[GigControl] = 0x0E00;
        _regs[GigStatus] = 0x3C00;
        _regs[15] = 0x3000;
        _regs[16] = 0x0068;
        UpdateLink();
    }

    public bool Link
    {
        get => _link;
        set { _link = value; UpdateLink(); }
    }

    private void UpdateLink()
    {
        _regs[StatusReg] = (ushort)(0x7949 | (_link ? StatusLink | StatusAutonegComplete : 0));
        _regs[SpecificStatus] = (ushort)(_link ? 0xAC00 : 0);
    }

    public ushort Read(int reg) => _regs[reg & 31];

    public void Write(int reg, ushort value)
    {
        reg &= 31;
        if (reg == StatusReg || reg == Id1 || reg == Id2 || reg == SpecificStatus || reg == GigStatus || reg == LinkPartner) return;
        if (reg == Control) value &= unchecked((ushort)~(0x8000 | 0x0200)); // reset and restart autonegotiation complete at once
        _regs[reg] = value;
    }

    public sealed record State(int Version, ushort[] Registers, bool Link)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, (ushort[])_regs.Clone(), _link);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"e1000 PHY state version {s.Version} is not supported.");
        s.Registers.AsSpan(0, 32).CopyTo(_regs);
        _link = s.Link;
    }
}
