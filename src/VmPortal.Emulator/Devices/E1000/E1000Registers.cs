namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// Register offsets (in the 128 KiB MMIO BAR) and bit names of the Intel 82540EM, from Intel's "PCI/PCI-X Family of
/// Gigabit Ethernet Controllers Software Developer's Manual" (8254x), the ones Linux's e1000 driver and iPXE's
/// intel driver use.
/// </summary>
public static class E1000Registers
{
    public const int Ctrl = 0x0000, Status = 0x0008, Eecd = 0x0010, Eerd = 0x0014, CtrlExt = 0x0018, Mdic = 0x0020;
    public const int Icr = 0x00C0, Itr = 0x00C4, Ics = 0x00C8, Ims = 0x00D0, Imc = 0x00D8;
    public const int Rctl = 0x0100, Tctl = 0x0400, Tipg = 0x0410, Pba = 0x1000;
    public const int Rdbal = 0x2800, Rdbah = 0x2804, Rdlen = 0x2808, Rdh = 0x2810, Rdt = 0x2818, Rdtr = 0x2820, Radv = 0x282C;
    public const int Tdbal = 0x3800, Tdbah = 0x3804, Tdlen = 0x3808, Tdh = 0x3810, Tdt = 0x3818, Tidv = 0x3820, Tadv = 0x382C;
    public const int StatsStart = 0x4000, StatsEnd = 0x4100;
    public const int Mpc = 0x4010, Gprc = 0x4074, Bprc = 0x4078, Mprc = 0x407C, Gptc = 0x4080;
    public const int Gorcl = 0x4088, Gorch = 0x408C, Gotcl = 0x4090, Gotch = 0x4094, Rnbc = 0x40A0;
    public const int Torl = 0x40C0, Torh = 0x40C4, Totl = 0x40C8, Toth = 0x40CC, Tpr = 0x40D0, Tpt = 0x40D4;
    public const int Mptc = 0x40F0, Bptc = 0x40F4;
    public const int Rxcsum = 0x5000;
    public const int Mta = 0x5200, MtaEntries = 128, Ral0 = 0x5400, Rah0 = 0x5404, ReceiveAddresses = 16;

    // CTRL
    public const uint CtrlSlu = 1u << 6, CtrlReset = 1u << 26, CtrlPhyReset = 1u << 31;
    // STATUS
    public const uint StatusFullDuplex = 1u << 0, StatusLinkUp = 1u << 1, StatusSpeed1000 = 1u << 7;
    // ICR / IMS causes
    public const uint IntTxdw = 1u << 0, IntTxqe = 1u << 1, IntLsc = 1u << 2, IntRxdmt0 = 1u << 4, IntRxo = 1u << 6, IntRxt0 = 1u << 7;
    // RCTL
    public const uint RctlEnable = 1u << 1, RctlUnicastPromisc = 1u << 3, RctlMulticastPromisc = 1u << 4,
        RctlBroadcastAccept = 1u << 15, RctlBsex = 1u << 25, RctlStripCrc = 1u << 26;
    // RXCSUM (reset value: IPOFL | TUOFL)
    public const uint RxcsumIpofl = 1u << 8, RxcsumTuofl = 1u << 9;
    // TCTL
    public const uint TctlEnable = 1u << 1;
    // RAH
    public const uint RahAddressValid = 1u << 31;
    // EECD
    public const uint EecdSk = 1u << 0, EecdCs = 1u << 1, EecdDi = 1u << 2, EecdDo = 1u << 3,
        EecdRequest = 1u << 6, EecdGrant = 1u << 7, EecdPresent = 1u << 8;
    // EERD (82540: start bit 0, done bit 4, address bits 15:8, data bits 31:16)
    public const uint EerdStart = 1u << 0, EerdDone = 1u << 4;
    // MDIC
    public const uint MdicOpWrite = 1u << 26, MdicOpRead = 2u << 26, MdicReady = 1u << 28, MdicError = 1u << 30;

    // Descriptors
    public const int DescriptorSize = 16;
    public const byte RxStatusDd = 0x01, RxStatusEop = 0x02, RxStatusIxsm = 0x04, RxStatusTcpcs = 0x20, RxStatusIpcs = 0x40;
    public const byte RxErrorTcpe = 0x20, RxErrorIpe = 0x40;
    public const byte TxCmdEop = 0x01, TxCmdIc = 0x04, TxCmdRs = 0x08, TxCmdRps = 0x10, TxCmdDext = 0x20, TxCmdTse = 0x04;
    public const byte TxStatusDd = 0x01;
    public const byte TxPoptsIxsm = 0x01, TxPoptsTxsm = 0x02;
    public const byte TuCmdTcp = 0x01, TuCmdIp = 0x02;
}
