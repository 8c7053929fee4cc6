/**
 * Size limits on queries and documents (docs/query.md, "Errors and limits").
 * Queries and documents come from untrusted peers, so every dimension that
 * costs memory or time is bounded; the defaults are the Python side's.
 */

export interface QueryLimits {
  /** Nesting depth of a query (operators and literal values). */
  readonly maxDepth: number;
  /** Operators, paths and literal values of a query. */
  readonly maxNodes: number;
  /** Characters (code points) of any key, path or string literal. */
  readonly maxString: number;
  /** Characters (code points) of a `$regex` pattern. */
  readonly maxRegex: number;
  /** Encoded size of a `Filter`, in bytes. */
  readonly maxBytes: number;
}

export interface DocumentLimits {
  /** Nesting depth of a document. */
  readonly maxDepth: number;
  /** Values of a document (every `Value`: scalars, lists and maps, nested ones included). */
  readonly maxNodes: number;
  /** Encoded size of a document, in bytes. */
  readonly maxBytes: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxDepth: 20, maxNodes: 1000, maxString: 1024, maxRegex: 256, maxBytes: 64 * 1024,
});

export const DEFAULT_DOCUMENT_LIMITS: DocumentLimits = Object.freeze({
  maxDepth: 24, maxNodes: 4096, maxBytes: 1024 * 1024,
});
