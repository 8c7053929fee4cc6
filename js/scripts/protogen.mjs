// `npm run proto`: generate src/gen/ from ../proto with protoc-gen-es, run by buf (both from
// node_modules, so it works offline).  `--check` generates into a scratch directory and fails
// when the committed src/gen/ differs: stale generated code (the Python side's
// tests/test_protogen.py does the same for taiinet/v1/).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ROOT } from "./build.mjs";

function generate(outDir) {
  const result = spawnSync(`${ROOT}node_modules/.bin/buf`,
    ["generate", `${ROOT}../proto`, "--template", `${ROOT}buf.gen.yaml`, "-o", outDir],
    { stdio: "inherit", cwd: ROOT });
  if (result.status !== 0) throw new Error("buf generate failed");
}

function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

if (process.argv.includes("--check")) {
  const scratch = mkdtempSync(join(tmpdir(), "taiinet-protogen-"));
  try {
    generate(scratch);
    const fresh = join(scratch, "src", "gen");
    const committed = join(ROOT, "src", "gen");
    const names = listFiles(fresh);
    const stale = JSON.stringify(names) !== JSON.stringify(listFiles(committed))
      ? ["the set of files"]
      : names.filter((name) => readFileSync(join(fresh, name), "utf8") !== readFileSync(join(committed, name), "utf8"));
    if (stale.length > 0) {
      console.error(`js/src/gen is stale (${stale.join(", ")}): run \`npm run proto\` in js/`);
      process.exit(1);
    }
    console.log(`js/src/gen is fresh (${names.length} files)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  rmSync(join(ROOT, "src", "gen"), { recursive: true, force: true });
  generate(ROOT);
  console.log("wrote js/src/gen");
}
