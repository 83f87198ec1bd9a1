// Build the web UI into src/legato/ui/static (or the folder given as `--outdir DIR`):
// app.js and app.css bundled and minified by esbuild, index.html copied as is.
//
// Reproducible: the same sources and lock file give the same bytes, wherever the checkout
// lies and whenever it runs: no timestamps, no source maps, no absolute paths (esbuild's
// minified output names no files), fixed output names (no content hashes; the Python
// package serves static/app.js and static/app.css).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const flag = process.argv.indexOf("--outdir");
const outdir = flag >= 0 ? resolve(process.argv[flag + 1]) : join(here, "..", "src", "legato", "ui", "static");

mkdirSync(outdir, { recursive: true });
await build({
  absWorkingDir: here,
  entryPoints: { app: "src/main.tsx" },
  outdir,
  entryNames: "[name]",
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  jsxImportSource: "preact",
  charset: "utf8",
  legalComments: "none",
  sourcemap: false,
  metafile: false,
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(outdir, "index.html"));
