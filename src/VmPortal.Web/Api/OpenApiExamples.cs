using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using VmPortal.Core.Quotas;
using VmPortal.Core.Tasks;
using VmPortal.Core.Templates;
using VmPortal.Core.Vms;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// What the OpenAPI document (<c>/openapi/v1.json</c>) adds to the generated schemas:
/// <list type="bullet">
/// <item><b>Examples</b> of the main request and answer bodies, made by serializing real objects with the API's own
/// JSON options (so an example is exactly what the API sends or accepts); <c>OpenApiExampleTests</c> validates every
/// example in the document against its schema.</item>
/// <item><b>Error shapes</b>: every <c>/api</c> operation lists <c>default</c> — problem details
/// (<c>application/problem+json</c>, RFC 9457) for any error — and the errors every authenticated endpoint can give:
/// 401 (no or a bad token), 403 (role or token scope), 429 (the token's rate limit, with <c>Retry-After</c>).</item>
/// </list>
/// </summary>
internal static class OpenApiExamples
{
    private static readonly Guid VmId = Guid.Parse("0193a5b0-7c2e-7d41-9a55-2b1f6f0c1a01");
    private static readonly Guid UserId = Guid.Parse("0193a5af-11aa-7b20-8c33-5e6f70819a02");
    private static readonly Guid TaskId = Guid.Parse("0193a5b1-0f00-7e00-8a00-0c0ffee00003");
    private static readonly Guid TemplateId = Guid.Parse("0193a5ae-2222-7333-8444-555566667777");
    private static readonly DateTimeOffset At = new(2026, 12, 6, 18, 0, 0, TimeSpan.Zero);

    private static VmDto Vm => new(VmId, "web-01", "a web server", UserId, "alice", 256,
        [new DiskDto(Guid.Parse("0193a5b0-7c2e-7d41-9a55-2b1f6f0c1b01"), 4096, "upload:debian-12-i386.qcow2", "ide")],
        null, [BootDevice.Disk, BootDevice.Cdrom],
        new NicDto(true, "e1000", "52:54:00:1a:2b:3c", "default", [new PortForwardDto("tcp", "127.0.0.1", 2222, 22)]),
        new CloudInitDto("web-01", "debian", true, ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnly alice@laptop"]),
        false, VmState.Stopped, At, At, 812);

    /// <summary>Example objects by the type whose schema shows them.</summary>
    private static readonly Dictionary<Type, Func<object>> Examples = new()
    {
        [typeof(VmDto)] = () => Vm,
        [typeof(VmSpec)] = () => new VmSpec
        {
            Name = "web-01", TemplateId = TemplateId, MemoryMiB = 256,
            CloudInit = new CloudInitSpec { User = "debian", Password = "correct horse battery", SshAuthorizedKeys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnly alice@laptop"] },
        },
        [typeof(PagedResult<VmDto>)] = () => new PagedResult<VmDto>([Vm], 1, 1, 50),
        [typeof(TaskDto)] = () => new TaskDto(TaskId, "vm.start", "vm", VmId.ToString(), "web-01", UserId, "alice", PortalTaskStatus.Succeeded,
            new TaskProgress(0, 0, "done"), JsonSerializer.SerializeToElement(new VmPowerDto(VmId, VmState.Running, null, 6144), Json),
            null, false, At, At, At.AddMilliseconds(84)),
        [typeof(TaskProgress)] = () => new TaskProgress(512L << 20, 2048L << 20, "copying disk 1 of 1: 512 of 2048 MiB"),
        [typeof(TaskError)] = () => new TaskError(409, "Quota exceeded", "Memory quota exceeded: running VMs use 192 MiB + 128 MiB for this one > 256 MiB."),
        [typeof(VmPowerDto)] = () => new VmPowerDto(VmId, VmState.Running, null, 6144),
        [typeof(TemplateDto)] = () => new TemplateDto(TemplateId, "debian-12", "Debian 12 with cloud-init", "Debian 12", "linux",
            "builtin:debian-12-i386-img", null, 256, 1024, 0, 16384, [BootDevice.Disk, BootDevice.Cdrom], true, "{name}", "debian", true,
            "default", true, At, At, [], LeaseHours: 168, LeaseGraceHours: 24),
        [typeof(TemplateSpec)] = () => new TemplateSpec
        {
            Name = "debian-12", Description = "Debian 12 with cloud-init", Os = "Debian 12", ImageId = "builtin:debian-12-i386-img",
            MemoryMiB = 256, MaxMemoryMiB = 1024, MaxDiskSizeMiB = 16384, CloudInit = true, DefaultUser = "debian", Published = true,
            LeaseHours = 168, LeaseGraceHours = 24,
        },
        [typeof(TemplateFromVmSpec)] = () => new TemplateFromVmSpec("web-golden", "web-01 with nginx installed", "Debian 12", Published: true),
        [typeof(Core.Clones.CloneSpec)] = () => new Core.Clones.CloneSpec("web-02", Core.Clones.CloneMode.Linked),
        [typeof(QuotaDto)] = () => new QuotaDto(2, 1, 256, 20),
        [typeof(QuotaView)] = () => new QuotaView(UserId, new QuotaDto(2, 1, 256, 20), new QuotaUsage(1, 1, 128, 4)),
        [typeof(CreateTokenRequest)] = () => new CreateTokenRequest("alice", "alice-password", "nightly job", 30, ["vms:read", "vms:power"], 120),
        [typeof(CreateTokenResponse)] = () => new CreateTokenResponse(Guid.Parse("0193a5b2-aaaa-7bbb-8ccc-dddddddddddd"), "nightly job",
            "vmp_EXAMPLE-shown-once-0000000000000000000000000", At.AddDays(30), ["vms:read", "vms:power"], 120),
        [typeof(ProblemDetails)] = () => new ProblemDetails
        {
            Type = "https://tools.ietf.org/html/rfc9110#section-15.5.10", Title = "Conflict", Status = 409,
            Detail = "Stop 'web-01' before making a template of it.",
        },
        [typeof(HttpValidationProblemDetails)] = () => new HttpValidationProblemDetails(new Dictionary<string, string[]>
        {
            ["memoryMiB"] = ["Memory must be between 16 and 16384 MiB."],
            ["disks[0].sizeMiB"] = ["At least the base image's size (2048 MiB)."],
        })
        { Title = "One or more fields are invalid.", Status = 400, Type = "https://tools.ietf.org/html/rfc9110#section-15.5.1" },
    };

    private static JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static OpenApiOptions Add(OpenApiOptions o)
    {
        o.AddSchemaTransformer((schema, context, _) =>
        {
            Json = context.ApplicationServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
            var type = context.JsonTypeInfo.Type;
            if (context.JsonPropertyInfo is null && Examples.TryGetValue(type, out var make))
                schema.Example = JsonSerializer.SerializeToNode(make(), type, Json);
            return Task.CompletedTask;
        });
        o.AddOperationTransformer(async (operation, context, ct) =>
        {
            var path = context.Description.RelativePath ?? "";
            if (!path.StartsWith("api/", StringComparison.Ordinal)) return;
            operation.Responses ??= new OpenApiResponses();
            var problem = await context.GetOrCreateSchemaAsync(typeof(ProblemDetails), null, ct);
            OpenApiResponse Problem(string description) => new()
            {
                Description = description,
                Content = new Dictionary<string, OpenApiMediaType> { ["application/problem+json"] = new() { Schema = problem } },
            };
            operation.Responses.TryAdd("default", Problem("Any error: RFC 9457 problem details whose `detail` says what is wrong"));
            var anonymous = context.Description.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Authorization.IAllowAnonymous>().Any()
                || !context.Description.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Authorization.IAuthorizeData>().Any();
            if (anonymous) return;
            operation.Responses.TryAdd("401", Problem("No token or cookie, or the token is unknown, revoked or expired"));
            operation.Responses.TryAdd("403", Problem("The caller's role, or the token's scopes, do not allow this"));
            operation.Responses.TryAdd("429", Problem("The token's rate limit (see `Retry-After`)"));
        });
        return o;
    }
}
