// The query language and the Value codec against the shared vectors, plus the regular
// expression subset that only this implementation restricts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { InvalidDocument, InvalidQuery, MalformedFilter, MalformedValue } from "../src/errors.js";
import { filterFromBytes, filterToBytes } from "../src/query/filterCodec.js";
import { Query } from "../src/query/query.js";
import { translateRegex } from "../src/query/regex.js";
import { documentToValue, valueToDocument, valueToDocumentCounted } from "../src/query/valueCodec.js";
import { type Document, compareStrings, valueEquals } from "../src/query/values.js";
import { hasIntegralFloat, hex, load, toHexString, untag } from "./vectors.js";

const queries = load("queries.json");
const values = load("values.json");

describe("query matching (conformance)", () => {
  for (const c of queries.match) {
    it(`${c.note}: ${c.match}`, () => {
      assert.equal(new Query(untag(c.query)).matches(untag(c.document)), c.match);
    });
  }
});

describe("Filter codec (conformance)", () => {
  for (const c of queries.match) {
    it(`${c.note}: decodes its Filter`, () => {
      const query = new Query(untag(c.query));
      assert.deepEqual(filterFromBytes(hex(c.filter)), query.ast);
      assert.equal(Query.fromFilterBytes(hex(c.filter)).matches(untag(c.document)), c.match);
      assert.deepEqual(new Query(query.toJson()).ast, query.ast);
    });
    if (!hasIntegralFloat(c.query)) {
      it(`${c.note}: encodes its Filter`, () => assert.equal(toHexString(new Query(untag(c.query)).toFilterBytes()), c.filter));
    }
  }
  for (const c of queries.malformed_filters) {
    it(`rejects the Filter: ${c.name}`, () => assert.throws(() => filterFromBytes(hex(c.filter)), MalformedFilter));
  }
  it("rejects a Filter over 65,536 bytes before parsing it", () => {
    const big = filterToBytes({ kind: "field", path: "a", ops: [{ kind: "compare", op: "eq", value: "x".repeat(65536) }] });
    assert.throws(() => filterFromBytes(big), MalformedFilter);
    assert.throws(() => filterFromBytes(new Uint8Array(65537)), /over 65536/);
  });
  it("keeps a __proto__ path as data", () => {
    const query = new Query(JSON.parse('{"__proto__": 1}'));
    assert.deepEqual(Query.fromFilterBytes(query.toFilterBytes()).ast, query.ast);
  });
});

describe("invalid queries (conformance)", () => {
  for (const c of queries.invalid) {
    it(`${c.note} at ${c.path.slice(0, 40)}`, () => {
      assert.throws(() => new Query(untag(c.query)), (error: unknown) => {
        assert.ok(error instanceof InvalidQuery);
        assert.equal(error.path, c.path);
        return true;
      });
    });
  }
});

describe("regular expressions outside the portable subset", () => {
  // RE2 (the Python side) accepts these; this peer cannot run them with the same meaning.
  for (const pattern of ["(?i)a", "(?s:.)", "\\pL", "\\p{Greek}", "[[:alpha:]]", "\\Qa.b\\E", "\\C", "\\0", "a{", "a{,3}", "\\x{41}", "[\\S]", "\\e"]) {
    it(`rejects ${pattern}`, () => {
      assert.throws(() => new Query({ a: { $regex: pattern } }), (error: unknown) => error instanceof InvalidQuery && error.path === "a.$regex");
    });
  }
  // RE2 rejects these (the product of nested counts is over 1000); so must this peer.
  for (const pattern of ["(a{100}){11}", "((a{10}){10}){11}", "(?:a{2}){501}", "x{2,1}", "x{2}{3}"]) {
    it(`rejects ${pattern} as RE2 does`, () => assert.throws(() => new Query({ a: { $regex: pattern } }), InvalidQuery));
  }
  for (const pattern of ["(a{100}){10}", "((a{10}){10}){10}", "(a*){1000}", "(?P<n>a)", "(?<n>a)", "[]a]", "[^]a]", "a{2,}", "\\_", "[a-c-]"]) {
    it(`accepts ${pattern}`, () => assert.doesNotThrow(() => new Query({ a: { $regex: pattern } })));
  }
  it("translates a pattern to RE2's meaning", () => {
    assert.deepEqual(translateRegex("^a.\\s$", "m"), { source: "(?:^|(?<=\\n))\\u{61}[^\\n][\\t\\n\\f\\r ](?:$|(?=\\n))", flags: "u" });
  });
  it("counts a pattern's length in code points", () => {
    assert.doesNotThrow(() => new Query({ a: { $regex: "😀".repeat(256) } }));
    assert.throws(() => new Query({ a: { $regex: "😀".repeat(257) } }), InvalidQuery);
  });
});

describe("document values", () => {
  it("orders strings by code point, not by UTF-16 unit", () => {
    assert.ok(compareStrings("\uffff", "😀") < 0);
    assert.ok(compareStrings("a", "ab") < 0);
    assert.equal(compareStrings("é", "é"), 0);
  });
  it("compares numbers and bigints exactly", () => {
    assert.ok(valueEquals(1, 1n));
    assert.ok(!valueEquals(2 ** 53, 2n ** 53n + 1n));
    assert.ok(!valueEquals(1, true));
    assert.ok(valueEquals({ a: [1, { b: Uint8Array.of(1) }] }, { a: [1n, { b: Uint8Array.of(1) }] }));
  });
});

describe("Value codec (conformance)", () => {
  for (const c of values.valid) {
    it(`decodes ${c.value.slice(0, 40)}`, () => {
      assert.ok(valueEquals(valueToDocument(hex(c.value)), untag(c.document)));
      assert.deepEqual(valueToDocument(hex(c.value)), untag(c.document));
    });
    if (!hasIntegralFloat(c.document)) {
      it(`encodes ${c.value.slice(0, 40)}`, () => assert.equal(toHexString(documentToValue(untag(c.document))), c.value));
    }
  }
  for (const c of values.invalid) {
    it(`rejects: ${c.name}`, () => assert.throws(() => valueToDocument(hex(c.value)), MalformedValue));
  }
  for (const c of values.lenient) {
    it(`accepts: ${c.name}`, () => assert.deepEqual(valueToDocument(hex(c.value)), untag(c.document)));
  }
  it("counts the values it decoded", () => {
    assert.equal(valueToDocumentCounted(documentToValue({ a: [1, 2], b: null }))[1], 5);
  });
  it("keeps a __proto__ key as data", () => {
    const document = valueToDocument(documentToValue(JSON.parse('{"__proto__": {"x": 1}}') as Document));
    assert.equal(Object.getPrototypeOf(document), Object.prototype);
    assert.ok(new Query({ "__proto__.x": 1 }).matches(document));
  });
  it("refuses what is not a document", () => {
    for (const bad of [NaN, 2n ** 63n, "\ud800", { a: undefined }, new Date(0), [() => 1]]) {
      assert.throws(() => documentToValue(bad as Document), InvalidDocument);
    }
  });
});
