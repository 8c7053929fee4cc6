/** `Query`: a parsed, validated, compiled query (docs/query.md). */

import { DEFAULT_QUERY_LIMITS, type QueryLimits } from "./limits.js";
import { type Matcher, compileFilter } from "./matcher.js";
import type { Filter } from "./nodes.js";
import { parseQuery } from "./parser.js";
import type { Document } from "./values.js";

/**
 * A Mongo-like query, parsed into an AST and compiled into a matcher.
 * `new Query({ age: { $gt: 4 } })` throws `InvalidQuery` when the query is not valid.
 */
export class Query {
  readonly ast: Filter;
  readonly #match: Matcher;

  constructor(query: unknown, limits: QueryLimits = DEFAULT_QUERY_LIMITS) {
    this.ast = query instanceof Query ? query.ast : parseQuery(query, limits);
    this.#match = compileFilter(this.ast);
  }

  /** Whether the JSON-like `document` matches. */
  matches(document: Document): boolean {
    return this.#match(document);
  }
}
