// Test plugin for named ports in the JavaScript helper (the twin of
// tests/plugins/{python,c}-ports).
//
// Input ports `a` and `b`, output ports `kept` and `negative`. Every row
// gains `from`, the name of the port it came in by; rows with `n` >= 0 leave
// by `kept`, the others (negative or null) by `negative`. Each input port
// must end exactly once, after its last batch: `finish` fails otherwise.
import * as weir from "./weir.js";

const ended = new Set();

export const transform = weir.transform({
  ports(_config) {
    return { inputs: ["a", "b"], outputs: ["kept", "negative"] };
  },

  describe(schema, _config) {
    return [...schema.filter((f) => f.name !== "from"), { name: "from", type: "utf8", nullable: true }];
  },

  init(_config) {},

  process(batch, output) {
    if (batch.portEnded) {
      if (ended.has(batch.port)) throw new weir.WeirError(`port ${batch.port} ended twice`);
      ended.add(batch.port);
      return;
    }
    if (ended.has(batch.port)) throw new weir.WeirError(`a batch on ${batch.port} after it ended`);
    const n = batch.column("n", "int64");
    const negative = output.to("negative");
    const kept = output.keepMask();
    for (let row = 0; row < batch.numRows; row++) {
      if (n.isValid(row) && n.values[row] >= 0n) kept[row >> 3] |= 1 << (row & 7);
      else negative.keep(row);
    }
    const from = Array(batch.numRows).fill(batch.port);
    output.addUtf8("from", from);
    negative.addUtf8("from", from);
  },

  finish() {
    if (ended.size !== 2) throw new weir.WeirError(`ports ended: ${[...ended].join(", ")}; expected a and b`);
  },
});
