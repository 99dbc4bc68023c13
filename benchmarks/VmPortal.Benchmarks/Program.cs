using VmPortal.Benchmarks.Cpu;
using VmPortal.Benchmarks.Network;
using VmPortal.Benchmarks.Platform;
using VmPortal.Benchmarks.Storage;

// VmPortal benchmarks. Usage: dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- cpu [iterations]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- boot
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- idle [machines] [seconds] [--refresh]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- disk [DIR]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- guest-disk [MiB] [--no-qemu]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- state [rounds] [--boot-state FILE]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- snapshot [rounds] [--at-instructions N]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- net [MiB]
string which = args.Length > 0 ? args[0] : "cpu";
return which switch
{
    "cpu" => CpuBenchmark.Run(args),
    "boot" => await BootBenchmark.Run(args),
    "idle" => await IdleBenchmark.Run(args),
    "disk" => DiskBenchmark.Run(args),
    "guest-disk" => await GuestDiskBenchmark.Run(args),
    "state" => await StateBenchmark.Run(args),
    "snapshot" => await SnapshotBenchmark.Run(args),
    "net" => await NetworkBenchmark.Run(args),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: VmPortal.Benchmarks cpu [iterations] | boot | idle [machines] [seconds] [--refresh] | disk [DIR] | guest-disk [MiB] [--no-qemu] | state [rounds] [--boot-state FILE] | snapshot [rounds] [--at-instructions N] | net [MiB]");
    return 2;
}
