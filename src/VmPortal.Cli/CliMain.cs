namespace VmPortal.Cli;

/// <summary>Dispatches the sub-commands of <c>vmportal</c> and maps usage errors to exit code 1.</summary>
public static class CliMain
{
    public static async Task<int> RunAsync(string[] args, Stream? stdin, TextWriter stdout, TextWriter stderr, Stream? rawStdout = null)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.WriteLine(RunOptions.Usage);
            stdout.WriteLine("Disk images: vmportal img --help (create, info, convert, check, resize).");
            stdout.WriteLine("The portal's API: vmportal login|logout|vm|template|console|quota (vmportal vm --help).");
            return args.Length == 0 ? RunCommand.ExitHostError : 0;
        }
        if (args[0] == "img") return ImgCommand.Run(args.Skip(1).ToList(), stdout, stderr);
        if (Api.ApiCommand.Handles(args[0]))
        {
            using var reader = stdin is null ? null : new StreamReader(stdin, leaveOpen: true);
            return await new Api.ApiCommand(stdout, stderr, reader).RunAsync(args);
        }
        if (args[0] != "run")
        {
            stderr.WriteLine($"vmportal: unknown command '{args[0]}' (try 'vmportal run --help' or 'vmportal img --help')");
            return RunCommand.ExitHostError;
        }
        var options = RunOptions.Parse(args.Skip(1).ToList(), out string? error);
        if (options == null)
        {
            stderr.WriteLine($"vmportal run: {error}");
            stderr.WriteLine("Try 'vmportal run --help'.");
            return RunCommand.ExitHostError;
        }
        if (options.Help)
        {
            stdout.WriteLine(RunOptions.Usage);
            return 0;
        }
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        // SIGTERM (and SIGINT) end the run like a timeout, so --save-state still writes its file.
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
            ctx => { ctx.Cancel = true; cts.Cancel(); });
        try
        {
            return await new RunCommand(options, stdout, stderr, rawStdout).ExecuteAsync(stdin, cts.Token);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            stderr.WriteLine($"vmportal run: {e.Message}");
            return RunCommand.ExitHostError;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
