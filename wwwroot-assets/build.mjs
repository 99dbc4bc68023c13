// Bundles the console client: console/index.js → <out>/console.js, console/console.css → <out>/console.css.
// Usage: node build.mjs [outDir]   (default: ../src/VmPortal.Web/wwwroot/console)
import * as esbuild from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] ?? path.join(here, '..', 'src', 'VmPortal.Web', 'wwwroot', 'console'));

await esbuild.build({
  absWorkingDir: here,
  entryPoints: { console: 'console/index.js' },
  bundle: true,
  format: 'iife',
  target: ['chrome120', 'firefox120', 'safari17'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  outdir,
  logLevel: 'warning',
});
await esbuild.build({
  absWorkingDir: here,
  entryPoints: { console: 'console/console.css' },
  bundle: true,
  minify: true,
  outdir,
  logLevel: 'warning',
});
console.log(`console client bundled into ${path.relative(process.cwd(), outdir) || outdir}`);
