# VmPortal portal image: build with the .NET SDK, run on the ASP.NET runtime, serve on port 5080.
# The container needs an external PostgreSQL (ConnectionStrings__Portal); docker-compose.yml provides one.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# Node.js bundles the browser console client (wwwroot-assets/ -> wwwroot/console/) during the Web build.
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Directory.Build.props VmPortal.sln ./
COPY scripts/ scripts/
COPY wwwroot-assets/ wwwroot-assets/
COPY src/ src/
RUN dotnet publish src/VmPortal.Web/VmPortal.Web.csproj -c Release -o /app/publish -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# SeaBIOS and its VGA BIOS are the VMs' firmware (found at /usr/share/seabios at run time).
RUN apt-get update && apt-get install -y --no-install-recommends seabios && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/publish ./
# Data layout (same keys as appsettings.json / docs/portal.md):
#   /var/lib/vmportal/images         uploaded images (Images:StorePath)      -> named volume
#   /var/lib/vmportal/keys           cookie/antiforgery keys                 -> named volume
#   /var/lib/vmportal/builtin-images built-in guest images (VMPORTAL_IMAGE_CACHE)
RUN mkdir -p /var/lib/vmportal/images /var/lib/vmportal/keys /var/lib/vmportal/builtin-images \
 && chown -R "$APP_UID" /var/lib/vmportal
ENV ASPNETCORE_URLS=http://0.0.0.0:5080 \
    Portal__DataDirectory=/var/lib/vmportal \
    Images__StorePath=/var/lib/vmportal/images \
    VMPORTAL_IMAGE_CACHE=/var/lib/vmportal/builtin-images \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
USER $APP_UID
EXPOSE 5080
ENTRYPOINT ["dotnet", "VmPortal.Web.dll"]
