using VmPortal.Cli;

// vmportal: headless tools for VmPortal's emulator. `vmportal run …` runs one PC in this process.
return await CliMain.RunAsync(args, Console.OpenStandardInput(), Console.Out, Console.Error, Console.OpenStandardOutput());
