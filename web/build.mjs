// Bundle entry.js into one self-contained IIFE that the web page loads from the host
// (nothing is fetched from the internet at run time). The output is byte-identical for the
// same package-lock.json: no timestamps, no absolute paths, no source map.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "core", "src", "aecflow", "host", "web", "uppy.js");

await build({
  absWorkingDir: here,
  entryPoints: ["entry.js"],
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  sourcemap: false,
  define: { "process.env.NODE_ENV": '"production"' },
  banner: { js: "/* Uppy (MIT) bundled for aecflow by web/build.mjs; rebuild with `make web`. */" },
  outfile,
  logLevel: "warning",
});
const digest = createHash("sha256").update(readFileSync(outfile)).digest("hex");
console.log(`core/src/aecflow/host/web/uppy.js sha256 ${digest}`);
