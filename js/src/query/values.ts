/**
 * The document model: JSON-like JavaScript values, their equality and their order
 * (docs/query.md, "Documents").
 *
 * A document is `null`, a boolean, a number (an integer is an int, any other
 * number a float; never NaN), a `bigint` (an int beyond 2**53; decoded ints
 * that do not fit a number come back as bigints), a string, a `Uint8Array`
 * (bytes), an array of documents or a plain object with string keys.
 *
 * Equality is by type class, then value: `1 == 1.0 == 1n` but `true != 1` and
 * `"1" != 1`; maps are equal when they hold the same keys with equal values in
 * any order.  Order exists only within one class: numbers (ints, floats and
 * bigints compared exactly), strings (by code point, not by UTF-16 unit),
 * bytes, booleans.
 */

export type Document =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Document[]
  | { [key: string]: Document };

export type DocumentMap = { [key: string]: Document };

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Type classes, as in the Python reference. */
export enum TypeClass { Null, Bool, Number, String, Bytes, List, Map, Other }

export function isMap(value: unknown): value is DocumentMap {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export function typeClass(value: unknown): TypeClass {
  if (value === null) return TypeClass.Null;
  switch (typeof value) {
    case "boolean": return TypeClass.Bool;
    case "number": case "bigint": return TypeClass.Number;
    case "string": return TypeClass.String;
    default:
      if (value instanceof Uint8Array) return TypeClass.Bytes;
      if (Array.isArray(value)) return TypeClass.List;
      return isMap(value) ? TypeClass.Map : TypeClass.Other;
  }
}

export function hasOwn(map: DocumentMap, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(map, key);
}

/** Set a key of a document map, `"__proto__"` included, as an own property. */
export function setEntry(map: DocumentMap, key: string, value: Document): void {
  Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Document equality (see the module comment). */
export function valueEquals(a: Document, b: Document): boolean {
  const cls = typeClass(a);
  if (cls !== typeClass(b)) return false;
  switch (cls) {
    case TypeClass.Number:
      // eslint-disable-next-line eqeqeq -- loose equality compares a number and a bigint exactly
      return (a as number | bigint) == (b as number | bigint);
    case TypeClass.Bytes:
      return compareBytes(a as Uint8Array, b as Uint8Array) === 0;
    case TypeClass.List: {
      const x = a as Document[];
      const y = b as Document[];
      return x.length === y.length && x.every((item, i) => valueEquals(item, y[i] as Document));
    }
    case TypeClass.Map: {
      const x = a as DocumentMap;
      const y = b as DocumentMap;
      const keys = Object.keys(x);
      return keys.length === Object.keys(y).length
        && keys.every((key) => hasOwn(y, key) && valueEquals(x[key] as Document, y[key] as Document));
    }
    default:
      return a === b;
  }
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A UTF-16 unit remapped so that unit order is code point order (surrogates sort last). */
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Compare strings by code point (which is also UTF-8 byte order), as Python does. */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Order of two values of the same ordered class: negative, 0 or positive. */
export function compareValues(a: Document, b: Document): number {
  switch (typeof a) {
    case "number": case "bigint": {
      const y = b as number | bigint;
      return a < y ? -1 : a > y ? 1 : 0;
    }
    case "string": return compareStrings(a, b as string);
    case "boolean": return Number(a) - Number(b as boolean);
    default: return compareBytes(a as Uint8Array, b as Uint8Array);
  }
}

/** Length in code points, as Python's `len` counts a string. */
export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether `text` encodes to UTF-8 (has no lone surrogate), as protobuf needs. */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** Why `value` is not a document within the limits, or `null` when it is. */
export function checkValue(value: unknown, maxDepth: number, maxNodes: number, maxString?: number): string | null {
  let budget = maxNodes;
  const walk = (v: unknown, depth: number): string | null => {
    budget -= 1;
    if (budget < 0) return `more than ${maxNodes} values`;
    if (depth > maxDepth) return `nested deeper than ${maxDepth}`;
    switch (typeof v) {
      case "boolean": return null;
      case "number": return Number.isNaN(v) ? "NaN is not a document value" : null;
      case "bigint": return v < INT64_MIN || v > INT64_MAX ? "integer out of the 64-bit range" : null;
      case "string":
        if (maxString !== undefined && codePointLength(v) > maxString) return `string longer than ${maxString}`;
        return isWellFormed(v) ? null : "string is not valid Unicode (lone surrogate)";
      default: break;
    }
    if (v === null) return null;
    if (v instanceof Uint8Array) {
      return maxString !== undefined && v.length > maxString ? `string longer than ${maxString}` : null;
    }
    if (Array.isArray(v)) {
      for (const item of v) {
        const problem = walk(item, depth + 1);
        if (problem !== null) return problem;
      }
      return null;
    }
    if (isMap(v)) {
      for (const key of Object.keys(v)) {
        if (maxString !== undefined && codePointLength(key) > maxString) return `map key longer than ${maxString}`;
        if (!isWellFormed(key)) return "map key is not valid Unicode (lone surrogate)";
        const problem = walk(v[key], depth + 1);
        if (problem !== null) return problem;
      }
      return null;
    }
    return `${typeof v === "object" ? (v.constructor?.name ?? "object") : typeof v} is not a document value`;
  };
  return walk(value, 1);
}
