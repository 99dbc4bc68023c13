using VmPortal.Cli;
using VmPortal.Emulator;

namespace VmPortal.Cli.Tests;

public class RunOptionsTests
{
    private static RunOptions Ok(params string[] args)
    {
        var o = RunOptions.Parse(args, out string? error);
        Assert.True(o != null, error);
        return o!;
    }

    private static string Error(params string[] args)
    {
        Assert.Null(RunOptions.Parse(args, out string? error));
        return error!;
    }

    [Fact]
    public void ParsesAFullCommandLine()
    {
        var o = Ok("--memory", "256", "--cdrom", "a.iso", "--hda", "d.img", "--fda", "f.img", "--boot", "hd",
            "--serial", "stdio", "--debugcon", "stdio", "--until", "VMPORTAL-GUEST-READY", "--timeout", "90",
            "--screen-text", "--screenshot", "s.png", "--type", "uname -m\\n");
        Assert.Equal(256, o.MemoryMiB);
        Assert.Equal("a.iso", o.CdRom);
        Assert.Equal(new[] { "d.img" }, o.HardDisks);
        Assert.Equal("f.img", o.Floppy);
        Assert.Equal(new[] { BootDevice.HardDisk, BootDevice.CdRom, BootDevice.Floppy }, o.BootOrder);
        Assert.True(o.SerialStdio);
        Assert.True(o.DebugconStdio);
        Assert.Matches(o.Until!, "x VMPORTAL-GUEST-READY y");
        Assert.Equal(90, o.TimeoutSeconds);
        Assert.True(o.ScreenText);
        Assert.Equal("s.png", o.Screenshot);
        Assert.Equal("uname -m\n", o.TypeText);
        Assert.False(o.TypeAtStart);
        Assert.True(Ok("--cdrom", "a.iso", "--type", "x", "--type-after", "start").TypeAtStart);
        Assert.Matches(Ok("--cdrom", "a.iso", "--type-after", "login:").TypeAfter, "debian login:");

        var config = o.ToMachineConfig();
        Assert.Equal(256, config.MemoryMiB);
        Assert.Equal(BootDevice.HardDisk, config.BootOrder[0]);
        Assert.Contains((ushort)0x402, config.DebugConsolePorts);
        Assert.Equal(TripleFaultAction.PowerOff, config.OnTripleFault);
    }

    [Fact]
    public void DirectKernelBootKeepsTheCommandLine()
    {
        var o = Ok("--kernel", "vmlinuz", "--initrd", "initrd.gz", "--append=console=ttyS0 quiet", "-m", "64M");
        var c = o.ToMachineConfig();
        Assert.Equal("vmlinuz", c.KernelPath);
        Assert.Equal("initrd.gz", c.InitrdPath);
        Assert.Equal("console=ttyS0 quiet", c.KernelCommandLine);
        Assert.Equal(64, c.MemoryMiB);
    }

    [Fact]
    public void TheFirstMediumGivenBootsFirstWithoutBoot()
    {
        Assert.Equal(BootDevice.HardDisk, Ok("--hda", "d.img").ToMachineConfig().BootOrder[0]);
        Assert.Equal(BootDevice.Floppy, Ok("--fda", "f.img").ToMachineConfig().BootOrder[0]);
        Assert.Equal(BootDevice.CdRom, Ok("--cdrom", "c.iso", "--hda", "d.img").ToMachineConfig().BootOrder[0]);
        Assert.Equal(new[] { BootDevice.Floppy, BootDevice.CdRom, BootDevice.HardDisk }, Ok("--cdrom", "c.iso", "--boot", "adc").BootOrder);
    }

    [Theory]
    [InlineData("unknown option '--frobnicate'", "--cdrom", "a.iso", "--frobnicate")]
    [InlineData("--memory must be a number", "--cdrom", "a.iso", "--memory", "lots")]
    [InlineData("--memory must be a number", "--cdrom", "a.iso", "--memory", "1")]
    [InlineData("--timeout must be a positive number", "--cdrom", "a.iso", "--timeout", "-3")]
    [InlineData("--boot takes cd, hd, fd or n", "--cdrom", "a.iso", "--boot", "usb")]
    [InlineData("--serial takes 'stdio' or 'none'", "--cdrom", "a.iso", "--serial", "tcp:1234")]
    [InlineData("--until: invalid regular expression", "--cdrom", "a.iso", "--until", "([")]
    [InlineData("--cdrom needs a value", "--cdrom")]
    [InlineData("--initrd and --append need --kernel", "--cdrom", "a.iso", "--initrd", "i")]
    [InlineData("must end in .png", "--cdrom", "a.iso", "--screenshot", "s.bmp")]
    [InlineData("--jit takes on or off", "--cdrom", "a.iso", "--jit", "fast")]
    [InlineData("--jit-threshold must be a whole number", "--cdrom", "a.iso", "--jit-threshold", "-1")]
    public void UsageErrorsSayWhatIsWrong(string expected, params string[] args)
    {
        Assert.Contains(expected, Error(args));
    }

    [Fact]
    public void JitOptionsReachTheMachineConfig()
    {
        var on = Ok("--cdrom", "a.iso", "--jit", "on", "--jit-threshold", "0").ToMachineConfig();
        Assert.True(on.Jit);
        Assert.Equal(0, on.JitThreshold);
        Assert.False(Ok("--cdrom", "a.iso", "--jit", "off").ToMachineConfig().Jit);
        var dflt = Ok("--cdrom", "a.iso").ToMachineConfig();
        Assert.Null(dflt.Jit);
        Assert.Null(dflt.JitThreshold);
    }

    [Theory]
    [InlineData("/ # ", true)]
    [InlineData("/ # \u001b[6n", true)]
    [InlineData("user@host:~$", true)]
    [InlineData("Loading /boot/vmlinuz... ok", false)]
    public void TheDefaultPromptPatternRecognisesShellPrompts(string tail, bool expected)
    {
        Assert.Equal(expected, RunOptions.DefaultPrompt.IsMatch("booting\n" + tail));
    }

    [Fact]
    public void UnescapeHandlesTheUsualEscapes()
    {
        Assert.Equal("a\nb\tc\\d\\q", RunOptions.Unescape("a\\nb\\tc\\\\d\\q"));
    }
}
