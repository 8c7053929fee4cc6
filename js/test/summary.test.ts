// Interest summaries (docs/pubsub.md section 5): equalities on one path merge into one
// canonical `$in`, so many topic subscriptions advertise one filter instead of `{}`; the
// summary always covers its inputs (fast-check over small queries and documents).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import fc from "fast-check";

import { MATCH_ALL_KEY, summarize } from "../src/pubsub/tree/interest.js";
import { MAX_MERGED_IN, mergeEqualities } from "../src/pubsub/summary.js";
import { toHex } from "../src/bytes.js";
import { Query } from "../src/query/query.js";
import type { Document } from "../src/query/values.js";

function unique(queries: readonly unknown[]): Map<string, Query> {
  return new Map(queries.map((q) => new Query(q)).map((q) => [toHex(q.toFilterBytes()), q]));
}

const json = (queries: readonly { query: Query }[]): unknown[] => queries.map((k) => k.query.toJson());

describe("interest summary", () => {
  it("merges twelve topic subscriptions into one $in, not {}", () => {
    const topics = Array.from({ length: 12 }, (_, i) => ({ topic: `t${i}` }));
    const summary = summarize(unique(topics), 8);
    assert.equal(summary.length, 1);
    assert.notEqual(summary[0]?.key, MATCH_ALL_KEY);
    const filter = summary[0]?.query as Query;
    for (let i = 0; i < 12; i++) assert.ok(filter.matches({ topic: `t${i}` }));
    assert.equal(filter.matches({ topic: "t12" }), false);
    assert.equal(filter.matches({}), false);
  });

  it("is canonical: the same interest in any order gives the same filters", () => {
    const a = summarize(unique([{ k: "b" }, { k: { $in: ["c", "a"] } }, { n: { $gt: 1 } }, { k: "a" }]), 8);
    const b = summarize(unique([{ n: { $gt: 1 } }, { k: "a" }, { k: { $in: ["a", "b"] } }, { k: "c" }]), 8);
    assert.deepEqual(a.map((k) => k.key), b.map((k) => k.key));
    assert.equal(a.length, 2);
  });

  it("keeps one value as an equality, other filters as they are, and {} wins", () => {
    assert.deepEqual(json(summarize(unique([{ k: "x" }]), 8)), [{ k: { $eq: "x" } }]);
    assert.deepEqual(json(summarize(unique([{ k: { $in: ["x"] } }]), 8)), [{ k: { $eq: "x" } }]);
    assert.equal(summarize(unique([{ k: { $ne: "x" } }, { k: { $in: ["x"] } }]), 8).length, 2);
    assert.deepEqual(json(summarize(unique([{ k: "x" }, {}]), 8)), [{}]);
    assert.deepEqual(summarize(new Map(), 8), []);
  });

  it("gives {} when more than the maximum remain after merging", () => {
    const many = Array.from({ length: 9 }, (_, i) => ({ [`p${i}`]: 1 }));
    assert.deepEqual(summarize(unique(many), 8).map((k) => k.key), [MATCH_ALL_KEY]);
    const wide = Array.from({ length: MAX_MERGED_IN + 1 }, (_, i) => ({ k: i }));
    assert.equal(mergeEqualities([...unique(wide).values()]).length, MAX_MERGED_IN + 1);
  });

  it("covers its inputs: a document any input matches, the summary matches", () => {
    const value: fc.Arbitrary<Document> = fc.oneof(fc.constantFrom<Document>(null, 1, 2, "a", "b", true), fc.constantFrom<Document>([1, 2], ["a"], { x: 1 }));
    const path = fc.constantFrom("a", "b", "a.x");
    const query = fc.oneof(
      fc.record({ path, value }).map(({ path: p, value: v }) => ({ [p]: v })),
      fc.record({ path, values: fc.array(value, { minLength: 1, maxLength: 3 }) }).map(({ path: p, values }) => ({ [p]: { $in: values } })),
      fc.record({ path, value }).map(({ path: p, value: v }) => ({ [p]: { $ne: v } })),
      fc.record({ path, n: fc.integer({ min: 0, max: 3 }) }).map(({ path: p, n }) => ({ [p]: { $gt: n } })),
    );
    const doc = fc.dictionary(fc.constantFrom("a", "b"), fc.oneof(value, fc.constant<Document>({ x: 2 })), { maxKeys: 2 });
    fc.assert(fc.property(fc.array(query, { minLength: 1, maxLength: 10 }), fc.array(doc, { maxLength: 12 }), (queries, docs) => {
      const inputs = [...unique(queries).values()];
      const summary = summarize(unique(queries), 8).map((k) => k.query);
      for (const d of docs) {
        if (inputs.some((q) => q.matches(d))) assert.ok(summary.some((q) => q.matches(d)), JSON.stringify({ queries, d }));
        const merged = mergeEqualities(inputs);
        assert.equal(merged.some((q) => q.matches(d)), inputs.some((q) => q.matches(d)), "merging is exact");
      }
    }), { seed: 11, numRuns: 300 });
  });
});
