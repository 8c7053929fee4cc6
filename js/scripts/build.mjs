// `npm run build`: bundle src/index.ts into one self-contained ES module, dist/taiinet.js
// (no bare specifiers left, so a page loads it with a plain import()).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export async function buildBundle({ minify = true, outfile = `${ROOT}dist/taiinet.js` } = {}) {
  await build({
    entryPoints: [`${ROOT}src/index.ts`],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify,
    keepNames: true, // error classes name themselves (`this.name = new.target.name`)
    sourcemap: false,
    legalComments: "eof",
    logLevel: "warning",
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outfile = await buildBundle();
  console.log(`wrote ${outfile}`);
}
