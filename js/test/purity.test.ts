// The browser peer's modules are sans-I/O cores, like the Python ones (tests/test_core_purity.py):
// no sockets, timers, clocks or ambient randomness; the caller brings bytes, time and keys.
// (Identity.generate draws a key from crypto.getRandomValues: key material, not a protocol decision.)
// The drivers live in src/io/ and nowhere else: they own sockets, timers and the clock.
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const FORBIDDEN = [
  /\bfetch\s*\(/, /\bWebSocket\b/, /\bRTCPeerConnection\b/, /\bXMLHttpRequest\b/, /\bDate\.now\b/, /\bnew Date\b/,
  /\bperformance\.now\b/, /\bset(Timeout|Interval|Immediate)\b/, /\bMath\.random\b/, /\bprocess\./, /from\s+["']node:/,
  /\bawait\b/, /\basync\s/,
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" || name === "io" ? [] : sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** The forbidden constructs in a module's code (comments are skipped). */
export function impurities(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return FORBIDDEN.filter((pattern) => pattern.test(code)).map(String);
}

describe("purity", () => {
  it("the checker catches I/O, clocks, timers and randomness", () => {
    assert.equal(impurities("const t = Date.now(); setTimeout(f, 1); Math.random(); await fetch(u);").length, 5);
    assert.deepEqual(impurities("// Date.now() in a comment\nconst x = 1;"), []);
  });
  for (const path of sources(SRC)) {
    it(`${path.slice(SRC.length)} is a pure core`, () => assert.deepEqual(impurities(readFileSync(path, "utf8")), []));
  }
});
