/**
 * Parse a JSON-like query into the AST (docs/query.md, "Queries").
 *
 * A port of the Python reference's parser, step for step, so that the two
 * count nodes and depth alike and name the same path in every `InvalidQuery`
 * (the conformance vectors check both).
 */

import { InvalidQuery } from "../errors.js";
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from "./limits.js";
import { type CompareName, type Filter, type Op, RANGE_OPS } from "./nodes.js";
import { RegexNotPortable, translateRegex } from "./regex.js";
import { type Document, INT64_MAX, checkValue, codePointLength, isMap, isWellFormed } from "./values.js";

const LOGICAL = ["$and", "$or", "$nor"];
const REGEX_OPTIONS = "ims";

function join(where: string, part: string | number): string {
  return where === "" ? String(part) : `${where}.${part}`;
}

function size(value: Document): number {
  if (Array.isArray(value)) return 1 + value.reduce<number>((n, v) => n + size(v), 0);
  if (isMap(value)) return 1 + Object.values(value).reduce<number>((n, v) => n + size(v), 0);
  return 1;
}

/** True for `{"$gt": 1, ...}`; a map mixing operators and fields is an error. */
function isOperatorMap(operand: unknown, where: string): operand is Record<string, unknown> {
  if (!isMap(operand)) return false;
  const keys = Object.keys(operand);
  if (keys.length === 0) return false;
  const dollar = keys.filter((k) => k.startsWith("$")).length;
  if (dollar === keys.length) return true;
  if (dollar > 0) throw new InvalidQuery(where, "a map mixes operators and field names");
  return false;
}

class Parser {
  private nodes = 0;

  constructor(private readonly limits: QueryLimits) {}

  private count(where: string, n = 1): void {
    this.nodes += n;
    if (this.nodes > this.limits.maxNodes) throw new InvalidQuery(where, `query has more than ${this.limits.maxNodes} nodes`);
  }

  private depth(where: string, depth: number): void {
    if (depth > this.limits.maxDepth) throw new InvalidQuery(where, `query nested deeper than ${this.limits.maxDepth}`);
  }

  private string(where: string, text: string): void {
    if (codePointLength(text) > this.limits.maxString) throw new InvalidQuery(where, `string longer than ${this.limits.maxString}`);
    if (!isWellFormed(text)) throw new InvalidQuery(where, "string is not valid Unicode (lone surrogate)");
  }

  private literal(where: string, value: unknown, depth: number): Document {
    const problem = checkValue(value, this.limits.maxDepth - depth + 1, this.limits.maxNodes - this.nodes + 1, this.limits.maxString);
    if (problem !== null) throw new InvalidQuery(where, `bad literal: ${problem}`);
    this.count(where, size(value as Document));
    return value as Document;
  }

  filter(query: unknown, where: string, depth: number): Filter {
    this.depth(where, depth);
    this.count(where);
    if (!isMap(query)) throw new InvalidQuery(where, `a query must be a map, not ${describe(query)}`);
    const children: Filter[] = [];
    for (const [key, operand] of Object.entries(query)) {
      const at = join(where, key);
      this.string(at, key);
      children.push(key.startsWith("$") ? this.logical(key, operand, at, depth + 1) : this.field(key, operand, at, depth + 1));
    }
    return children.length === 1 ? (children[0] as Filter) : { kind: "and", children };
  }

  private logical(key: string, operand: unknown, where: string, depth: number): Filter {
    if (!LOGICAL.includes(key)) throw new InvalidQuery(where, `unknown top-level operator ${key} (use $and, $or, $nor)`);
    if (!Array.isArray(operand) || operand.length === 0) throw new InvalidQuery(where, `${key} takes a non-empty list of queries`);
    const children = operand.map((q: unknown, i) => this.filter(q, join(where, i), depth + 1));
    return { kind: key === "$and" ? "and" : key === "$or" ? "or" : "nor", children };
  }

  private field(path: string, operand: unknown, where: string, depth: number): Filter {
    if (path === "" || path.split(".").some((part) => part === "" || part.startsWith("$"))) {
      throw new InvalidQuery(where, `bad field path ${JSON.stringify(path)}`);
    }
    this.depth(where, depth);
    if (isOperatorMap(operand, where)) return { kind: "field", path, ops: this.ops(operand, where, depth) };
    this.count(where);
    return { kind: "field", path, ops: [{ kind: "compare", op: "eq", value: this.literal(where, operand, depth) }] };
  }

  private ops(operators: Record<string, unknown>, where: string, depth: number): Op[] {
    this.depth(where, depth);
    if ("$options" in operators && !("$regex" in operators)) throw new InvalidQuery(join(where, "$options"), "$options needs $regex");
    const result: Op[] = [];
    for (const [name, operand] of Object.entries(operators)) {
      if (name === "$options") continue;
      const at = join(where, name);
      this.count(at);
      result.push(this.op(name, operand, operators, at, depth + 1));
    }
    return result;
  }

  private op(name: string, operand: unknown, siblings: Record<string, unknown>, where: string, depth: number): Op {
    this.depth(where, depth);
    const bare = name.slice(1);
    switch (bare) {
      case "eq": case "ne":
        return { kind: "compare", op: bare, value: this.literal(where, operand, depth) };
      case "gt": case "gte": case "lt": case "lte":
        if (Array.isArray(operand) || isMap(operand)) throw new InvalidQuery(where, `${name} takes a number, string, bytes, boolean or null`);
        return { kind: "compare", op: bare as CompareName, value: this.literal(where, operand, depth) };
      case "in": case "nin": case "all": {
        if (!Array.isArray(operand)) throw new InvalidQuery(where, `${name} takes a list`);
        const values = this.literal(where, operand, depth) as Document[];
        return bare === "all" ? { kind: "all", values } : { kind: "in", values, negate: bare === "nin" };
      }
      case "exists":
        if (typeof operand !== "boolean") throw new InvalidQuery(where, "$exists takes true or false");
        return { kind: "exists", present: operand };
      case "contains":
        return { kind: "contains", value: this.literal(where, operand, depth) };
      case "regex":
        return this.regex(operand, "$options" in siblings ? siblings["$options"] : "", where);
      case "size":
        return { kind: "size", size: sizeOperand(operand, where) };
      case "elemMatch": {
        if (!isMap(operand) || Object.keys(operand).length === 0) throw new InvalidQuery(where, "$elemMatch takes a non-empty map");
        if (Object.keys(operand).every((k) => k.startsWith("$") && !LOGICAL.includes(k))) {
          return { kind: "elemMatchOps", ops: this.ops(operand, where, depth) };
        }
        return { kind: "elemMatch", filter: this.filter(operand, where, depth) };
      }
      case "not":
        if (!isMap(operand) || Object.keys(operand).length === 0 || !isOperatorMap(operand, where)) {
          throw new InvalidQuery(where, "$not takes a non-empty map of operators");
        }
        return { kind: "not", ops: this.ops(operand, where, depth) };
      default:
        throw new InvalidQuery(where, `unknown operator ${name}`);
    }
  }

  private regex(pattern: unknown, options: unknown, where: string): Op {
    if (typeof pattern !== "string") throw new InvalidQuery(where, "$regex takes a string");
    this.string(where, pattern);
    if (codePointLength(pattern) > this.limits.maxRegex) throw new InvalidQuery(where, `pattern longer than ${this.limits.maxRegex}`);
    const optionsAt = join(where, "$options");
    if (typeof options !== "string" || [...options].some((c) => !REGEX_OPTIONS.includes(c))) {
      throw new InvalidQuery(optionsAt, "$options takes letters from 'ims'");
    }
    if (new Set(options).size !== options.length) throw new InvalidQuery(optionsAt, "$options repeats a letter");
    try {
      translateRegex(pattern, options);
    } catch (error) {
      if (error instanceof RegexNotPortable) throw new InvalidQuery(where, `bad regular expression: ${error.message}`);
      throw error;
    }
    return { kind: "regex", pattern, options };
  }
}

function sizeOperand(operand: unknown, where: string): bigint {
  if (typeof operand === "number" && Number.isSafeInteger(operand) && operand >= 0) return BigInt(operand);
  if (typeof operand === "bigint" && operand >= 0n && operand <= INT64_MAX) return operand;
  throw new InvalidQuery(where, "$size takes a non-negative 64-bit integer");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value;
}

/** Parse a JSON-like query; throws `InvalidQuery`. */
export function parseQuery(query: unknown, limits: QueryLimits = DEFAULT_QUERY_LIMITS): Filter {
  return new Parser(limits).filter(query, "", 1);
}
