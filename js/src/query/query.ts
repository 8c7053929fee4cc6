/** `Query`: a parsed, validated, compiled query (docs/query.md). */

import { filterFromBytes, filterToBytes, filterToJson } from "./filterCodec.js";
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

  /** Decode a protobuf `Filter` from a peer; throws `MalformedFilter`. */
  static fromFilterBytes(data: Uint8Array, limits: QueryLimits = DEFAULT_QUERY_LIMITS): Query {
    return new Query(filterToJson(filterFromBytes(data, limits)), limits);
  }

  /** Whether the JSON-like `document` matches. */
  matches(document: Document): boolean {
    return this.#match(document);
  }

  /** The canonical JSON-like form; `new Query(q.toJson())` has the same AST. */
  toJson(): { [key: string]: unknown } {
    return filterToJson(this.ast);
  }

  /** The query as an encoded protobuf `Filter`. */
  toFilterBytes(): Uint8Array {
    return filterToBytes(this.ast);
  }
}
