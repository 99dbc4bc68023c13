using VmPortal.Benchmarks.Cpu;

// VmPortal benchmarks. Usage: dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- cpu [iterations]
//                             dotnet run -c Release --project benchmarks/VmPortal.Benchmarks -- boot
string which = args.Length > 0 ? args[0] : "cpu";
return which switch
{
    "cpu" => CpuBenchmark.Run(args),
    "boot" => await BootBenchmark.Run(args),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: VmPortal.Benchmarks cpu [iterations] | boot");
    return 2;
}
