/**
 * Compile a filter into a function that tests one document (docs/query.md).
 *
 * Theory of operation.  A dotted path resolves to the list of values it
 * reaches (`resolve`): through maps by key, through arrays by numeric index
 * and into every map element of an array (MongoDB's implicit array
 * traversal); an empty list means the field is missing.  A value operator
 * (`$eq`, ranges, `$in`, `$contains`, `$regex`) holds when it holds for one
 * resolved value or for one element of a resolved array; `$size`, `$all` and
 * `$elemMatch` look at arrays; `$ne`, `$nin` and `$not` are negations and so
 * hold for a missing field; `$eq: null` holds for a missing field.
 * Comparisons order values only within one type class, and null is a class of
 * its own (as in MongoDB): `$gte: null` and `$lte: null` mean `$eq: null`,
 * `$gt: null` and `$lt: null` hold for nothing.
 */

import type { Filter, Op } from "./nodes.js";
import { regexSearcher } from "./regex.js";
import { type Document, compareValues, hasOwn, isMap, typeClass, valueEquals } from "./values.js";

export type Matcher = (document: Document) => boolean;
type ValuesTest = (values: Document[]) => boolean;
type ValueTest = (value: Document) => boolean;

const ASCII_DIGITS = /^[0-9]+$/;

/** Every value the path `parts` reaches in `document` (empty when missing). */
export function resolve(document: Document, parts: readonly string[]): Document[] {
  const out: Document[] = [];
  const walk = (value: Document, i: number): void => {
    if (i === parts.length) {
      out.push(value);
      return;
    }
    const key = parts[i] as string;
    if (isMap(value)) {
      if (hasOwn(value, key)) walk(value[key] as Document, i + 1);
    } else if (Array.isArray(value)) {
      if (ASCII_DIGITS.test(key)) {
        const index = Number(key);
        if (index < value.length) walk(value[index] as Document, i + 1);
      }
      for (const element of value) if (isMap(element)) walk(element, i);
    }
  };
  walk(document, 0);
  return out;
}

function equalTest(operand: Document): ValueTest {
  return (x) => valueEquals(x, operand);
}

function rangeTest(op: string, operand: Document): ValueTest {
  const cls = typeClass(operand);
  const holds = op === "gt" ? (c: number) => c > 0 : op === "gte" ? (c: number) => c >= 0
    : op === "lt" ? (c: number) => c < 0 : (c: number) => c <= 0;
  return (x) => typeClass(x) === cls && holds(compareValues(x, operand));
}

/** Holds when `test` holds for a resolved value or an element of a resolved array. */
function anyValue(test: ValueTest): ValuesTest {
  return (values) => values.some((v) => test(v) || (Array.isArray(v) && v.some(test)));
}

function inTest(values: readonly Document[]): ValueTest {
  return (x) => values.some((v) => valueEquals(x, v));
}

function containsTest(operand: Document): ValueTest {
  const element = equalTest(operand);
  if (typeof operand === "string") {
    return (x) => (typeof x === "string" && x.includes(operand)) || (Array.isArray(x) && x.some(element));
  }
  return (x) => Array.isArray(x) && x.some(element);
}

/** A missing field also satisfies `test` (for `$eq: null`, `$in` with null). */
function orMissing(test: ValuesTest): ValuesTest {
  return (values) => values.length === 0 || test(values);
}

function negate(test: ValuesTest): ValuesTest {
  return (values) => !test(values);
}

/** The meaning of a range comparison with null, or `null` for any other operator. */
function nullComparison(op: Op): Op | null {
  if (op.kind === "compare" && op.value === null && op.op !== "eq" && op.op !== "ne") {
    return op.op === "gte" || op.op === "lte" ? { kind: "compare", op: "eq", value: null } : { kind: "in", values: [], negate: false };
  }
  return null;
}

function compileOp(op: Op): ValuesTest {
  const meaning = nullComparison(op);
  if (meaning !== null) return compileOp(meaning);
  switch (op.kind) {
    case "compare": {
      if (op.op === "eq" || op.op === "ne") {
        let test = anyValue(equalTest(op.value));
        if (op.value === null) test = orMissing(test);
        return op.op === "ne" ? negate(test) : test;
      }
      return anyValue(rangeTest(op.op, op.value));
    }
    case "in": {
      let test = anyValue(inTest(op.values));
      if (op.values.some((v) => v === null)) test = orMissing(test);
      return op.negate ? negate(test) : test;
    }
    case "exists":
      return op.present ? (values) => values.length > 0 : (values) => values.length === 0;
    case "contains":
      return anyValue(containsTest(op.value));
    case "regex": {
      const search = regexSearcher(op.pattern, op.options);
      return anyValue((x) => typeof x === "string" && search(x));
    }
    case "all": {
      if (op.values.length === 0) return () => false;
      const tests = op.values.map((v) => compileOp({ kind: "compare", op: "eq", value: v }));
      return (values) => tests.every((t) => t(values));
    }
    case "size": {
      const size = op.size;
      return (values) => values.some((v) => Array.isArray(v) && BigInt(v.length) === size);
    }
    case "elemMatch": {
      const documentTest = compileFilter(op.filter);
      return (values) => values.some((v) => Array.isArray(v) && v.some((e) => isMap(e) && documentTest(e)));
    }
    case "elemMatchOps": {
      const opsTest = compileOps(op.ops);
      return (values) => values.some((v) => Array.isArray(v) && v.some((e) => opsTest([e])));
    }
    case "not":
      return negate(compileOps(op.ops));
  }
}

function compileOps(ops: readonly Op[]): ValuesTest {
  const tests = ops.map(compileOp);
  return tests.length === 1 ? (tests[0] as ValuesTest) : (values) => tests.every((t) => t(values));
}

/** Compile a filter into `document -> boolean`. */
export function compileFilter(node: Filter): Matcher {
  if (node.kind === "field") {
    const parts = node.path.split(".");
    const test = compileOps(node.ops);
    return (document) => test(resolve(document, parts));
  }
  const kids = node.children.map(compileFilter);
  switch (node.kind) {
    case "and": return (document) => kids.every((k) => k(document));
    case "or": return (document) => kids.some((k) => k(document));
    case "nor": return (document) => !kids.some((k) => k(document));
  }
}
