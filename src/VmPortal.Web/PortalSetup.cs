using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using MudBlazor.Services;
using Scalar.AspNetCore;
using VmPortal.Core;
using VmPortal.Core.Images;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Web.Api;
using VmPortal.Web.Auth;
using VmPortal.Web.Components;
using VmPortal.Web.Hosting;
using VmPortal.Web.Security;

namespace VmPortal.Web;

/// <summary>Service registration and the HTTP pipeline of the portal (used by Program and by the tests).</summary>
public static class PortalSetup
{
    public const string SmartScheme = "Cookie-or-Token";

    public static void AddPortal(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        var config = builder.Configuration;

        services.AddSingleton<PortalPaths>();
        // cookie/antiforgery keys survive restarts (./.data/keys; a volume in the container)
        var keyDir = Path.Combine(new PortalPaths(config).DataDirectory, "keys");
        services.AddDataProtection().SetApplicationName("VmPortal").PersistKeysToFileSystem(new DirectoryInfo(keyDir));
        services.AddSingleton<PortalDatabase>();
        services.AddDbContextFactory<PortalDbContext>((sp, o) =>
            o.UseNpgsql(sp.GetRequiredService<PortalDatabase>().ConnectionString));
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<PortalDbContext>>().CreateDbContext());
        services.AddHostedService<DatabaseInitializer>();
        services.AddHostedService<VmPortal.Core.Networks.NetworkStartup>();

        services.AddPortalCore();
        builder.AddPortalSecurity();
        services.AddOptions<ImageStoreOptions>()
            .Configure<PortalPaths>((o, paths) =>
            {
                o.BuiltInPath = config["Images:BuiltInPath"] is { Length: > 0 } b ? b : ImageCatalog.DefaultBuiltInPath();
                o.StorePath = paths.Resolve(config["Images:StorePath"] is { Length: > 0 } s ? s : Path.Combine(paths.DataDirectory, "images"));
            });
        services.AddOptions<VmPortal.Core.Disks.DiskStoreOptions>()
            .Configure<PortalPaths>((o, paths) =>
                o.StorePath = paths.Resolve(config["Disks:StorePath"] is { Length: > 0 } s ? s : Path.Combine(paths.DataDirectory, "disks")));

        // ---- identity: cookies for the UI, bearer tokens for scripts ----
        services.AddIdentityCore<PortalUser>(o =>
            {
                o.User.RequireUniqueEmail = false;
                o.User.AllowedUserNameCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._@";
                o.Password.RequiredLength = 8;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireLowercase = false;
                o.Password.RequireDigit = false;
                // no account lockout: password guessing is throttled per address and user name (LoginThrottle),
                // so nobody can lock someone else out, and API tokens are never affected
                o.Lockout.AllowedForNewUsers = false;
            })
            .AddRoles<IdentityRole<Guid>>()
            .AddEntityFrameworkStores<PortalDbContext>()
            .AddSignInManager()
            .AddDefaultTokenProviders();

        services.AddAuthentication(o =>
            {
                o.DefaultScheme = SmartScheme;
                o.DefaultChallengeScheme = SmartScheme;
            })
            .AddPolicyScheme(SmartScheme, "Cookie or API token", o =>
            {
                o.ForwardDefaultSelector = ctx =>
                    ctx.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                        ? ApiTokenAuthenticationHandler.SchemeName
                        : IdentityConstants.ApplicationScheme;
            })
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(ApiTokenAuthenticationHandler.SchemeName, null)
            .AddIdentityCookies();
        services.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = ".VmPortal.Auth";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.LoginPath = "/account/login";
            o.LogoutPath = "/account/logout";
            o.AccessDeniedPath = "/account/access-denied";
            o.ExpireTimeSpan = SessionRegistry.CookieLifetime;
            o.SlidingExpiration = true;
            o.Events.OnRedirectToLogin = ctx =>
            {
                if (IsApi(ctx.Request))
                {
                    ctx.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    ctx.Response.Headers.WWWAuthenticate = "Bearer"; // RFC 9110 §11.6.1; the cookie is for the UI
                }
                else ctx.Response.Redirect(ctx.RedirectUri);
                return Task.CompletedTask;
            };
            // a signed-out session's cookie is refused at once; then Identity's security-stamp check (every minute)
            o.Events.OnValidatePrincipal = async ctx =>
            {
                var sessions = ctx.HttpContext.RequestServices.GetRequiredService<SessionRegistry>();
                if (ctx.Principal is null || await sessions.IsEndedAsync(ctx.Principal))
                {
                    ctx.RejectPrincipal();
                    await ctx.HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
                    return;
                }
                await SecurityStampValidator.ValidatePrincipalAsync(ctx);
            };
            o.Events.OnRedirectToAccessDenied = ctx =>
            {
                if (IsApi(ctx.Request)) ctx.Response.StatusCode = StatusCodes.Status403Forbidden;
                else ctx.Response.Redirect(ctx.RedirectUri);
                return Task.CompletedTask;
            };
        });
        // a disabled user's cookie stops working within a minute (security stamp changes on disable)
        services.Configure<SecurityStampValidatorOptions>(o =>
        {
            o.ValidationInterval = TimeSpan.FromMinutes(1);
            // the refreshed cookie keeps its session id
            o.OnRefreshingPrincipal = ctx =>
            {
                if (SessionRegistry.SessionOf(ctx.CurrentPrincipal) is { } sid && ctx.NewPrincipal?.Identity is System.Security.Claims.ClaimsIdentity id)
                    id.AddClaim(new System.Security.Claims.Claim(SessionRegistry.SessionClaim, sid));
                return Task.CompletedTask;
            };
        });
        services.AddSingleton<SessionRegistry>();
        services.AddAuthorization();
        services.AddCascadingAuthenticationState();
        services.AddScoped<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider, RevalidatingAuthStateProvider>();

        // ---- API ----
        services.AddProblemDetails();
        services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        });
        // bad JSON / wrong types / unknown enum values throw BadHttpRequestException, which ApiExceptionHandler turns
        // into problem details naming the field and the accepted values
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddSingleton<VmPortal.Web.Security.CallerMistakeLog>();
        services.AddExceptionHandler<ApiExceptionHandler>();
        services.AddOpenApi(o => OpenApiExamples.Add(o).AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "VmPortal API";
            doc.Info.Description =
                "VM inventory of VmPortal. Authenticate scripts with `Authorization: Bearer <token>`; mint a token with " +
                "POST /api/auth/tokens {username, password, name, expiresInDays}. Errors are RFC 9457 problem details.";
            doc.Components ??= new Microsoft.OpenApi.OpenApiComponents();
            doc.Components.SecuritySchemes ??= new Dictionary<string, Microsoft.OpenApi.IOpenApiSecurityScheme>();
            doc.Components.SecuritySchemes["Bearer"] = new Microsoft.OpenApi.OpenApiSecurityScheme
            {
                Type = Microsoft.OpenApi.SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "Personal API token (vmp_…)",
            };
            return Task.CompletedTask;
        }));
        services.AddHealthChecks().AddDbContextCheck<PortalDbContext>("database", tags: ["ready"]);

        // ---- UI ----
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddMudServices(c =>
        {
            c.SnackbarConfiguration.PositionClass = MudBlazor.Defaults.Classes.Position.BottomRight;
            c.SnackbarConfiguration.VisibleStateDuration = 4000;
        });
        services.AddHttpContextAccessor();
    }

    public static void UsePortal(this WebApplication app)
    {
        app.UsePortalSecurity();
        app.UseWhen(ctx => IsApi(ctx.Request), api =>
        {
            api.UseExceptionHandler();
            api.UseStatusCodePages();
        });
        app.UseWhen(ctx => !IsApi(ctx.Request), ui =>
        {
            if (!app.Environment.IsDevelopment()) ui.UseExceptionHandler("/Error", createScopeForErrors: true);
            ui.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
        });

        app.UseAuthentication();
        app.UseMiddleware<TokenScopeMiddleware>(); // API tokens: per-token rate limit and scopes
        app.UseAuthorization();
        app.UseAntiforgery();

        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });

        app.MapOpenApi();
        app.MapScalarApiReference("/api/docs", o => o.WithTitle("VmPortal API").DisableDefaultFonts().HideClientButton()
            .AddPreferredSecuritySchemes("Bearer"));

        app.MapAuthApi();
        app.MapVmsApi();
        app.MapImagesApi();
        app.MapTemplatesApi();
        app.MapQuotasApi();
        app.MapNetworksApi();
        app.MapAdminApi();
        app.MapTasksApi();
        app.MapGroupsApi();
        app.MapAuditExportApi();
        app.MapAccountEndpoints();

        app.MapStaticAssets();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
    }

    // REST endpoints and SignalR hubs answer 401/403 instead of redirecting to the sign-in page.
    private static bool IsApi(HttpRequest request) =>
        request.Path.StartsWithSegments("/api") || request.Path.StartsWithSegments("/hubs");
}
