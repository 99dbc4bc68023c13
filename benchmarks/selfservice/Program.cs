return await VmPortal.Benchmarks.SelfService.SelfServiceBenchmark.Run(args);
