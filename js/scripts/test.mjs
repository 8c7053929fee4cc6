// `npm test`: build the bundle, compile each test/*.test.ts with esbuild (no ts-node,
// no downloads) into .test-build/, then run them all with node's test runner.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { ROOT, buildBundle } from "./build.mjs";

await buildBundle();
const out = `${ROOT}.test-build`;
rmSync(out, { recursive: true, force: true });
const tests = readdirSync(`${ROOT}test`).filter((name) => name.endsWith(".test.ts"));
await build({
  entryPoints: tests.map((name) => `${ROOT}test/${name}`),
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
const files = tests.map((name) => `${out}/${name.replace(/\.ts$/, ".mjs")}`);
// node 20 has WebSocket behind a flag (the signal client's driver uses the platform's WebSocket).
const flags = typeof WebSocket === "undefined" ? ["--experimental-websocket", "--disable-warning=ExperimentalWarning"] : [];
const result = spawnSync(process.execPath, [...flags, "--test", "--test-reporter=./scripts/reporter.mjs", "--test-reporter-destination=stdout", ...files], { stdio: "inherit", cwd: ROOT });
process.exit(result.status ?? 1);
