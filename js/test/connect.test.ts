// TaiiNet.connect gives up, with the reason, when no signaller accepts it in time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NoSignallerAvailable } from "../src/errors.js";
import { TaiiNet } from "../src/io/taiinet.js";

describe("TaiiNet.connect", () => {
  it("rejects with NoSignallerAvailable naming the last failure when no signaller answers", async () => {
    await assert.rejects(TaiiNet.connect({ signallers: ["ws://127.0.0.1:1"], registerTimeoutMs: 1500 }), (error: unknown) => {
      assert.ok(error instanceof NoSignallerAvailable);
      assert.match(error.message, /within 1500 ms \(last: cannot dial ws:\/\/127\.0\.0\.1:1\)/);
      return true;
    });
  });

  it("refuses an invalid query with InvalidQuery naming the path", async () => {
    const { InvalidQuery, Query } = await import("../src/index.js");
    assert.throws(() => new Query({ age: { $gt: 4, $bogus: 1 } }), (error: unknown) => error instanceof InvalidQuery && error.path === "age.$bogus");
  });
});
