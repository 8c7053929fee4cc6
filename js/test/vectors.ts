// The shared conformance vectors (conformance/*.json at the repository root), as the Python
// reference wrote them; see conformance/README.md for the tagged values.
import { readFileSync } from "node:fs";

import type { Document } from "../src/query/values.js";
import { setEntry } from "../src/query/values.js";

const DIR = new URL("../../conformance/", import.meta.url);

export function load<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, DIR), "utf8")) as T;
}

export function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "hex"));
}

export function toHexString(data: Uint8Array): string {
  return Buffer.from(data).toString("hex");
}

/** The document a tagged JSON value stands for. */
export function untag(value: unknown): Document {
  if (Array.isArray(value)) return value.map(untag);
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [key, inner] = entries[0] as [string, string];
      if (key === "@bytes") return hex(inner);
      if (key === "@int") {
        const n = BigInt(inner);
        return n >= -BigInt(Number.MAX_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
      }
      if (key === "@float") return inner === "inf" ? Infinity : inner === "-inf" ? -Infinity : Number(inner);
    }
    const out: { [key: string]: Document } = {};
    for (const [key, inner] of entries) setEntry(out, key, untag(inner));
    return out;
  }
  return value as Document;
}

/** Whether a tagged value holds an integral float (which JavaScript writes as an int). */
export function hasIntegralFloat(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasIntegralFloat);
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]?.[0] === "@float") return !String(entries[0][1]).includes("inf");
    return entries.some(([, inner]) => hasIntegralFloat(inner));
  }
  return false;
}
