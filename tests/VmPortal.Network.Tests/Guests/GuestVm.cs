using System.Text.RegularExpressions;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Tests.Boot;

namespace VmPortal.Network.Tests;

/// <summary>The rescue guest (direct kernel boot, shell on COM1) with an e1000 on the given cable.</summary>
public sealed class GuestVm : IDisposable
{
    public GuestVm(string name, string mac, IFramePort port)
    {
        Mac = mac;
        var config = BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd, append: "console=ttyS0,115200");
        Harness = new BootHarness(new MachineConfig
        {
            Name = name,
            MemoryMiB = config.MemoryMiB,
            KernelPath = config.KernelPath,
            InitrdPath = config.InitrdPath,
            KernelCommandLine = config.KernelCommandLine,
            OnTripleFault = TripleFaultAction.PowerOff,
            Nic = new NicConfig { MacAddress = mac, Port = port },
        });
    }

    public string Mac { get; }
    public BootHarness Harness { get; }
    public string Address { get; private set; } = "";

    /// <summary>Boots to the shell and returns the address the guest's DHCP client announced.</summary>
    public async Task BootAsync()
    {
        await Harness.Start();
        // two guests boot at once; on the shared 2-core machine under heavy load that took up to 12 minutes
        string up = await Harness.WaitFor(@"VMPORTAL-NET-UP eth0 [0-9.]+", screen: false, timeout: TimeSpan.FromMinutes(15));
        Address = up.Split(' ')[2];
        await Harness.WaitFor(GuestImages.ReadyLine, screen: false);
        await Harness.WaitFor(@"/ # ", screen: false);
    }

    /// <summary>Runs a shell command and waits for <paramref name="expect"/> in what follows; returns that output.</summary>
    public async Task<string> Run(string command, string expect, TimeSpan? timeout = null)
    {
        int from = Harness.Serial.Length;
        Harness.Machine.SendSerial(System.Text.Encoding.ASCII.GetBytes(command + "\r"));
        await Harness.WaitFor(expect, screen: false, serialFrom: from, timeout: timeout);
        return Harness.Serial[from..];
    }

    /// <summary>Runs a command followed by a marker and returns its output once the marker appears.</summary>
    public async Task<string> RunToEnd(string command, TimeSpan? timeout = null)
    {
        string marker = $"END{Random.Shared.Next(100000, 999999)}";
        string output = await Run($"{command}; echo {marker[..3]}''{marker[3..]}", $"^{marker}", timeout);
        return output[..output.IndexOf(marker, StringComparison.Ordinal)];
    }

    public void Dispose() => Harness.Dispose();
}
