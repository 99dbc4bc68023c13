namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// Register bits and command codes of the ATA/ATAPI task file (ATA/ATAPI-7, T13/1532D), shared by the
/// IDE channel, the hard disk and the ATAPI CD-ROM.
/// </summary>
public static class AtaProtocol
{
    // Command block register offsets from the channel's base port (0x1F0 / 0x170).
    public const int RegData = 0, RegErrorFeatures = 1, RegSectorCount = 2, RegLbaLow = 3, RegLbaMid = 4, RegLbaHigh = 5;
    public const int RegDevice = 6, RegStatusCommand = 7;

    // Status register.
    public const byte StatusBsy = 0x80, StatusDrdy = 0x40, StatusDf = 0x20, StatusDsc = 0x10, StatusDrq = 0x08;
    public const byte StatusCorr = 0x04, StatusIdx = 0x02, StatusErr = 0x01;

    // Error register.
    public const byte ErrorBbk = 0x80, ErrorUnc = 0x40, ErrorMc = 0x20, ErrorIdnf = 0x10, ErrorMcr = 0x08, ErrorAbrt = 0x04;
    public const byte ErrorTk0nf = 0x02, ErrorAmnf = 0x01;
    /// <summary>Diagnostic code "device 0 passed, device 1 passed or absent" left in the error register after reset.</summary>
    public const byte DiagnosticPassed = 0x01;

    // Device register.
    public const byte DeviceLba = 0x40, DeviceDev = 0x10, DeviceObsolete = 0xA0;

    // Device control register (0x3F6 / 0x376).
    public const byte ControlHob = 0x80, ControlSrst = 0x04, ControlNien = 0x02;

    // ATAPI interrupt reason (sector count register during PACKET).
    public const byte ReasonCoD = 0x01, ReasonIo = 0x02, ReasonRel = 0x04;

    // Commands.
    public const byte CmdNop = 0x00, CmdDeviceReset = 0x08, CmdRecalibrate = 0x10;
    public const byte CmdReadSectors = 0x20, CmdReadSectorsNoRetry = 0x21, CmdReadSectorsExt = 0x24, CmdReadDmaExt = 0x25;
    public const byte CmdReadNativeMaxExt = 0x27, CmdReadMultipleExt = 0x29;
    public const byte CmdWriteSectors = 0x30, CmdWriteSectorsNoRetry = 0x31, CmdWriteSectorsExt = 0x34, CmdWriteDmaExt = 0x35;
    public const byte CmdWriteMultipleExt = 0x39, CmdWriteDmaFuaExt = 0x3D, CmdWriteMultipleFuaExt = 0xCE;
    public const byte CmdReadVerify = 0x40, CmdReadVerifyNoRetry = 0x41, CmdReadVerifyExt = 0x42;
    public const byte CmdSeek = 0x70, CmdExecuteDiagnostic = 0x90, CmdInitializeDeviceParameters = 0x91;
    public const byte CmdPacket = 0xA0, CmdIdentifyPacket = 0xA1;
    public const byte CmdReadMultiple = 0xC4, CmdWriteMultiple = 0xC5, CmdSetMultipleMode = 0xC6;
    public const byte CmdReadDma = 0xC8, CmdReadDmaNoRetry = 0xC9, CmdWriteDma = 0xCA, CmdWriteDmaNoRetry = 0xCB;
    public const byte CmdStandbyImmediate = 0xE0, CmdIdleImmediate = 0xE1, CmdStandby = 0xE2, CmdIdle = 0xE3;
    public const byte CmdCheckPowerMode = 0xE5, CmdSleep = 0xE6, CmdFlushCache = 0xE7, CmdFlushCacheExt = 0xEA;
    public const byte CmdIdentify = 0xEC, CmdSetFeatures = 0xEF, CmdReadNativeMax = 0xF8;
    public const byte CmdStandbyImmediateOld = 0x94, CmdIdleImmediateOld = 0x95, CmdStandbyOld = 0x96, CmdIdleOld = 0x97;
    public const byte CmdCheckPowerModeOld = 0x98, CmdSleepOld = 0x99;

    // SET FEATURES subcommands (features register).
    public const byte FeatureEnableWriteCache = 0x02, FeatureSetTransferMode = 0x03, FeatureDisableReadLookAhead = 0x55;
    public const byte FeatureDisableWriteCache = 0x82, FeatureEnableReadLookAhead = 0xAA;
    public const byte FeatureDisableRevertingToDefaults = 0x66, FeatureEnableRevertingToDefaults = 0xCC;

    /// <summary>Writes an ATA string (space padded, two characters per word, first character in the high byte).</summary>
    public static void PutString(Span<ushort> words, int firstWord, int wordCount, string text)
    {
        for (int i = 0; i < wordCount * 2; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            if (c < 0x20 || c > 0x7E) c = ' ';
            int w = firstWord + i / 2;
            if ((i & 1) == 0) words[w] = (ushort)((words[w] & 0x00FF) | (c << 8));
            else words[w] = (ushort)((words[w] & 0xFF00) | c);
        }
    }
}
