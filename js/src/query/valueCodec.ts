/**
 * Documents as protobuf `Value` bytes (docs/query.md, "Value"): the only
 * module of the query layer that touches the generated wire types.
 *
 * JavaScript mapping: an integer number that is safe (|n| < 2**53) is written
 * as `int_value`, any other number as `float_value`, a bigint as `int_value`
 * (64-bit range).  Reading gives a number for every float and for every int
 * that fits exactly, a bigint otherwise.  So a float with an integral value
 * (2.0) reads back as the number 2 and would be re-encoded as an int: equal as
 * a document, not byte for byte (signed documents are relayed as received,
 * never re-encoded).
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { InvalidDocument, MalformedValue } from "../errors.js";
import { ListValueSchema, MapEntrySchema, MapValueSchema, NullValue, type Value, ValueSchema } from "../gen/taiinet/v1/value_pb.js";
import { DEFAULT_DOCUMENT_LIMITS, type DocumentLimits } from "./limits.js";
import { type Document, type DocumentMap, checkValue, hasOwn, setEntry } from "./values.js";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The `Value` message of a document already checked (`checkValue`). */
export function toMessage(value: Document): Value {
  return create(ValueSchema, { kind: kindOf(value) });
}

function kindOf(value: Document): Value["kind"] {
  if (value === null) return { case: "nullValue", value: NullValue.NULL_VALUE };
  switch (typeof value) {
    case "boolean": return { case: "boolValue", value };
    case "bigint": return { case: "intValue", value };
    case "number":
      return Number.isSafeInteger(value) ? { case: "intValue", value: BigInt(value) } : { case: "floatValue", value };
    case "string": return { case: "stringValue", value };
    default: break;
  }
  if (value instanceof Uint8Array) return { case: "bytesValue", value };
  if (Array.isArray(value)) return { case: "listValue", value: create(ListValueSchema, { values: value.map(toMessage) }) };
  const entries = Object.keys(value).map((key) => create(MapEntrySchema, { key, value: toMessage((value as DocumentMap)[key] as Document) }));
  return { case: "mapValue", value: create(MapValueSchema, { entries }) };
}

/** Encode a JSON-like document as `Value` bytes; throws `InvalidDocument`. */
export function documentToValue(document: Document, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS): Uint8Array {
  const problem = checkValue(document, limits.maxDepth, limits.maxNodes);
  if (problem !== null) throw new InvalidDocument(`not a valid document: ${problem}`);
  const data = toBinary(ValueSchema, toMessage(document));
  if (data.length > limits.maxBytes) throw new InvalidDocument(`document encodes to ${data.length} bytes, over ${limits.maxBytes}`);
  return data;
}

/** Turn a parsed `Value` into a document, counting values and depth as it goes. */
export class ValueReader {
  nodes: number;

  constructor(private readonly maxDepth: number, maxNodes: number,
    private readonly error: new (message: string) => Error = MalformedValue) {
    this.nodes = maxNodes;
  }

  read(message: Value, depth: number): Document {
    this.nodes -= 1;
    if (this.nodes < 0) throw new this.error("value has too many nodes");
    if (depth > this.maxDepth) throw new this.error("value nested too deep");
    const kind = message.kind;
    switch (kind.case) {
      case "nullValue": return null;
      case "boolValue": case "stringValue": case "bytesValue": return kind.value;
      case "intValue": {
        const n = kind.value;
        return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
      }
      case "floatValue":
        if (Number.isNaN(kind.value)) throw new this.error("NaN is not a document value");
        return kind.value;
      case "listValue": return this.readList(kind.value.values, depth);
      case "mapValue": {
        const out: DocumentMap = {};
        for (const entry of kind.value.entries) {
          if (hasOwn(out, entry.key)) throw new this.error(`map key ${JSON.stringify(entry.key)} repeated`);
          if (entry.value === undefined) throw new this.error(`map key ${JSON.stringify(entry.key)} has no value`);
          setEntry(out, entry.key, this.read(entry.value, depth + 1));
        }
        return out;
      }
      default: throw new this.error("value has no kind set");
    }
  }

  /** The items of a list one level deeper than the list at `depth`. */
  readList(values: readonly Value[], depth: number): Document[] {
    return values.map((v) => this.read(v, depth + 1));
  }
}

/** Decode `Value` bytes from a peer; throws `MalformedValue`. */
export function valueToDocument(data: Uint8Array, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS): Document {
  return valueToDocumentCounted(data, limits)[0];
}

/** `valueToDocument` and the number of values decoded (what the document costs). */
export function valueToDocumentCounted(data: Uint8Array, limits: DocumentLimits = DEFAULT_DOCUMENT_LIMITS): [Document, number] {
  if (data.length > limits.maxBytes) throw new MalformedValue(`value of ${data.length} bytes is over ${limits.maxBytes}`);
  let message: Value;
  try {
    message = fromBinary(ValueSchema, data, { readUnknownFields: false });
  } catch (error) {
    throw new MalformedValue(`value does not parse: ${(error as Error).message}`);
  }
  const reader = new ValueReader(limits.maxDepth, limits.maxNodes);
  const document = reader.read(message, 1);
  return [document, limits.maxNodes - reader.nodes];
}
