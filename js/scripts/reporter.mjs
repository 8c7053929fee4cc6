// A terse reporter for node's test runner: each failure in full, then one summary line.
import { inspect } from "node:util";

export default async function* reporter(source) {
  let passed = 0;
  let failed = 0;
  for await (const event of source) {
    const isSuite = event.data?.details?.type === "suite";
    if (event.type === "test:pass" && !isSuite) passed++;
    if (event.type === "test:fail" && !isSuite) {
      failed++;
      yield `not ok: ${event.data.name} (${event.data.file ?? ""})\n${inspect(event.data.details.error, { depth: 4 })}\n`;
    }
  }
  yield `js tests: ${passed} passed, ${failed} failed\n`;
}
