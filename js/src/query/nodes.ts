/**
 * The typed, immutable AST of a query (docs/query.md; the Python reference's
 * taiinet/pubsub/query/nodes.py).  A `Filter` is a boolean combination of
 * `Field` tests; a `Field` applies a conjunction of operators to the values
 * found at a dotted path.  `{ kind: "and", children: [] }` matches everything.
 */

import type { Document } from "./values.js";

export type CompareName = "eq" | "ne" | "gt" | "gte" | "lt" | "lte";
export const RANGE_OPS: readonly CompareName[] = ["gt", "gte", "lt", "lte"];

export type Op =
  | { readonly kind: "compare"; readonly op: CompareName; readonly value: Document }
  | { readonly kind: "in"; readonly values: readonly Document[]; readonly negate: boolean }
  | { readonly kind: "exists"; readonly present: boolean }
  | { readonly kind: "contains"; readonly value: Document }
  | { readonly kind: "regex"; readonly pattern: string; readonly options: string }
  | { readonly kind: "all"; readonly values: readonly Document[] }
  | { readonly kind: "size"; readonly size: bigint }
  | { readonly kind: "elemMatch"; readonly filter: Filter }
  | { readonly kind: "elemMatchOps"; readonly ops: readonly Op[] }
  | { readonly kind: "not"; readonly ops: readonly Op[] };

export type Filter =
  | { readonly kind: "field"; readonly path: string; readonly ops: readonly Op[] }
  | { readonly kind: "and" | "or" | "nor"; readonly children: readonly Filter[] };

export const MATCH_ALL: Filter = Object.freeze({ kind: "and", children: Object.freeze([]) });
