/**
 * Interest summaries (docs/pubsub.md section 5): the filters a node
 * advertises, canonical and bounded.
 *
 * `mergeEqualities` merges `{p: v}` / `{p: {$in: [...]}}` filters on one path
 * into one `$in` with its values in a canonical order (or `{p: v}` for one
 * value): exact (the union matches the same documents) and canonical, so the
 * same interest always gives the same advert and adverts do not churn.  Ten
 * pages subscribed to ten topics thus advertise one filter, not `{}`.
 *
 * Departure from the reference: no widening by the query engine's
 * `summarize` (query.md); when more than `maxFilters` filters remain after
 * merging, the summary is `{}`.  Section 5 allows any covering summary.
 */

import { toHex } from "../bytes.js";
import { InvalidQuery } from "../errors.js";
import { filterToBytes, filterToJson } from "../query/filterCodec.js";
import type { Filter } from "../query/nodes.js";
import { Query } from "../query/query.js";
import type { Document } from "../query/values.js";

/** Most values one merged `$in` holds; beyond, each value stays a filter of its own. */
export const MAX_MERGED_IN = 64;

/** The equality values of `{p: v}` or `{p: {$in: [...]}}`, or null for any other filter. */
function equalities(ast: Filter): { path: string; values: readonly Document[] } | null {
  if (ast.kind !== "field" || ast.ops.length !== 1) return null;
  const op = ast.ops[0];
  if (op?.kind === "compare" && op.op === "eq") return { path: ast.path, values: [op.value] };
  if (op?.kind === "in" && !op.negate) return { path: ast.path, values: op.values };
  return null;
}

function fieldQuery(path: string, values: readonly Document[]): Query {
  const ast: Filter = values.length === 1
    ? { kind: "field", path, ops: [{ kind: "compare", op: "eq", value: values[0] as Document }] }
    : { kind: "field", path, ops: [{ kind: "in", values, negate: false }] };
  return new Query(filterToJson(ast));
}

/** `queries` with the equalities on each path merged into one canonical filter. */
export function mergeEqualities(queries: readonly Query[]): Query[] {
  const groups = new Map<string, Map<string, Document>>(); // path -> value key -> value
  const rest: Query[] = [];
  for (const query of queries) {
    const found = equalities(query.ast);
    if (found === null) {
      rest.push(query);
      continue;
    }
    const values = groups.get(found.path) ?? new Map<string, Document>();
    groups.set(found.path, values);
    for (const value of found.values) {
      const key = toHex(filterToBytes({ kind: "field", path: "", ops: [{ kind: "compare", op: "eq", value }] }));
      values.set(key, value);
    }
  }
  for (const [path, values] of groups) {
    const ordered = [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
    if (ordered.length <= MAX_MERGED_IN) {
      try {
        rest.push(fieldQuery(path, ordered));
        continue;
      } catch (error) {
        if (!(error instanceof InvalidQuery)) throw error; // over the query limits: unmerged
      }
    }
    for (const value of ordered) rest.push(fieldQuery(path, [value]));
  }
  return rest;
}
