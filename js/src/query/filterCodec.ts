/**
 * Queries as protobuf `Filter` bytes (docs/query.md, "Filter"), and the
 * canonical JSON form of a query.
 *
 * Decoding turns the message into the JSON-like query it stands for and runs
 * the parser on it, so a filter from a peer is validated exactly as a local
 * query (same limits, same rules); any failure is a `MalformedFilter`.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { InvalidQuery, MalformedFilter } from "../errors.js";
import {
  ElemMatchOperatorSchema, FieldFilterSchema, type Filter as FilterMessage, FilterListSchema, FilterSchema,
  type Operator, OperatorListSchema, OperatorSchema, RegexOperatorSchema,
} from "../gen/taiinet/v1/query_pb.js";
import { ListValueSchema } from "../gen/taiinet/v1/value_pb.js";
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from "./limits.js";
import type { Filter, Op } from "./nodes.js";
import { parseQuery } from "./parser.js";
import { ValueReader, toMessage } from "./valueCodec.js";
import { type Document, type DocumentMap, INT64_MAX, setEntry } from "./values.js";

type Json = { [key: string]: unknown };

function object(entries: readonly [string, unknown][]): Json {
  const out: Json = {};
  for (const [key, value] of entries) setEntry(out as DocumentMap, key, value as Document);
  return out;
}

// ---------------------------------------------------------------- canonical JSON
/** The canonical JSON-like form of a filter (parses back to an equal AST). */
export function filterToJson(node: Filter): Json {
  if (node.kind === "field") return object([[node.path, opsToJson(node.ops)]]);
  if (node.kind === "and" && node.children.length === 0) return {};
  return object([[`$${node.kind}`, node.children.map(filterToJson)]]);
}

function opsToJson(ops: readonly Op[]): Json {
  const out: [string, unknown][] = [];
  for (const op of ops) {
    switch (op.kind) {
      case "compare": out.push([`$${op.op}`, op.value]); break;
      case "in": out.push([op.negate ? "$nin" : "$in", op.values]); break;
      case "all": out.push(["$all", op.values]); break;
      case "exists": out.push(["$exists", op.present]); break;
      case "contains": out.push(["$contains", op.value]); break;
      case "regex":
        out.push(["$regex", op.pattern]);
        if (op.options !== "") out.push(["$options", op.options]);
        break;
      case "size": out.push(["$size", op.size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(op.size) : op.size]); break;
      case "elemMatch": out.push(["$elemMatch", filterToJson(op.filter)]); break;
      case "elemMatchOps": out.push(["$elemMatch", opsToJson(op.ops)]); break;
      case "not": out.push(["$not", opsToJson(op.ops)]); break;
    }
  }
  return object(out);
}

// ---------------------------------------------------------------- encoding
function listMessage(values: readonly Document[]) {
  return create(ListValueSchema, { values: values.map(toMessage) });
}

function opMessage(op: Op): Operator {
  const kind = ((): Operator["op"] => {
    switch (op.kind) {
      case "compare": return { case: op.op, value: toMessage(op.value) };
      case "in": return op.negate ? { case: "ninList", value: listMessage(op.values) } : { case: "inList", value: listMessage(op.values) };
      case "all": return { case: "allList", value: listMessage(op.values) };
      case "exists": return { case: "exists", value: op.present };
      case "contains": return { case: "contains", value: toMessage(op.value) };
      case "regex": return { case: "regex", value: create(RegexOperatorSchema, { pattern: op.pattern, options: op.options }) };
      case "size": return { case: "size", value: op.size };
      case "elemMatch": return { case: "elemMatch", value: create(ElemMatchOperatorSchema, { form: { case: "filter", value: filterMessage(op.filter) } }) };
      case "elemMatchOps": return { case: "elemMatch", value: create(ElemMatchOperatorSchema, { form: { case: "ops", value: create(OperatorListSchema, { ops: op.ops.map(opMessage) }) } }) };
      case "not": return { case: "notOps", value: create(OperatorListSchema, { ops: op.ops.map(opMessage) }) };
    }
  })();
  return create(OperatorSchema, { op: kind });
}

function filterMessage(node: Filter): FilterMessage {
  if (node.kind === "field") {
    return create(FilterSchema, { node: { case: "field", value: create(FieldFilterSchema, { path: node.path, ops: node.ops.map(opMessage) }) } });
  }
  const list = create(FilterListSchema, { filters: node.children.map(filterMessage) });
  const which = node.kind === "and" ? "allOf" : node.kind === "or" ? "anyOf" : "noneOf";
  return create(FilterSchema, { node: { case: which, value: list } });
}

/** Encode a filter AST as `Filter` bytes. */
export function filterToBytes(node: Filter): Uint8Array {
  return toBinary(FilterSchema, filterMessage(node));
}

// ---------------------------------------------------------------- decoding
const OP_NAMES: Readonly<Record<string, string>> = {
  inList: "$in", ninList: "$nin", allList: "$all", elemMatch: "$elemMatch", notOps: "$not",
};

/** Turn a parsed `Filter` into the JSON-like query it stands for. */
class FilterReader {
  private readonly values: ValueReader;

  constructor(private readonly limits: QueryLimits) {
    // Literal values are bounded by the parser; this reader only guards its own recursion.
    this.values = new ValueReader(limits.maxDepth, limits.maxNodes, MalformedFilter);
  }

  filter(message: FilterMessage, depth: number): Json {
    if (depth > this.limits.maxDepth) throw new MalformedFilter("filter nested too deep");
    const node = message.node;
    switch (node.case) {
      case "field":
        if (node.value.ops.length === 0) throw new MalformedFilter(`field ${JSON.stringify(node.value.path)} has no operator`);
        return object([[node.value.path, this.ops(node.value.ops, depth + 1)]]);
      case "allOf": case "anyOf": case "noneOf": {
        const children = node.value.filters.map((f) => this.filter(f, depth + 1));
        if (node.case === "allOf" && children.length === 0) return {};
        return object([[node.case === "allOf" ? "$and" : node.case === "anyOf" ? "$or" : "$nor", children]]);
      }
      default: throw new MalformedFilter("filter has no node set");
    }
  }

  ops(ops: readonly Operator[], depth: number): Json {
    if (depth > this.limits.maxDepth) throw new MalformedFilter("filter nested too deep");
    const out: Json = {};
    const put = (key: string, value: unknown) => setEntry(out as DocumentMap, key, value as Document);
    for (const { op } of ops) {
      if (op.case === undefined) throw new MalformedFilter("operator has none set");
      const name = OP_NAMES[op.case] ?? `$${op.case}`;
      if (name in out) throw new MalformedFilter(`operator ${name} repeated in one field`);
      switch (op.case) {
        case "eq": case "ne": case "gt": case "gte": case "lt": case "lte": case "contains":
          put(name, this.values.read(op.value, depth)); break;
        case "inList": case "ninList": case "allList":
          put(name, this.values.readList(op.value.values, depth)); break;
        case "exists": put(name, op.value); break;
        case "size":
          if (op.value > INT64_MAX) throw new MalformedFilter("$size out of range");
          put(name, op.value); break;
        case "regex":
          put("$regex", op.value.pattern);
          if (op.value.options !== "") put("$options", op.value.options);
          break;
        case "elemMatch": {
          const form = op.value.form;
          if (form.case === "filter") put(name, this.filter(form.value, depth + 1));
          else if (form.case === "ops") put(name, this.ops(form.value.ops, depth + 1));
          else throw new MalformedFilter("$elemMatch has no form set");
          break;
        }
        case "notOps": put(name, this.ops(op.value.ops, depth + 1)); break;
      }
    }
    return out;
  }
}

/** Decode `Filter` bytes from a peer into a validated AST; throws `MalformedFilter`. */
export function filterFromBytes(data: Uint8Array, limits: QueryLimits = DEFAULT_QUERY_LIMITS): Filter {
  if (data.length > limits.maxBytes) throw new MalformedFilter(`filter of ${data.length} bytes is over ${limits.maxBytes}`);
  let message: FilterMessage;
  try {
    message = fromBinary(FilterSchema, data, { readUnknownFields: false });
  } catch (error) {
    throw new MalformedFilter(`filter does not parse: ${(error as Error).message}`);
  }
  const query = new FilterReader(limits).filter(message, 1);
  try {
    return parseQuery(query, limits);
  } catch (error) {
    if (error instanceof InvalidQuery) throw new MalformedFilter(`filter is not a valid query: ${error.message}`);
    throw error;
  }
}
