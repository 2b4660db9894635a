// Test plugin for the JavaScript helper on weir:plugin@0.2.0 (the twin of
// tests/plugins/python-types).
//
// config `mode`:
// - "copy": decodes every column and writes it back under the same name
//   and type (an unchanged output proves both directions exact);
// - "read": decodes every column it can read (unions and run-end-encoded
//   columns pass through undecoded) and writes nothing;
// - "cents": adds `cents` = `amount` (a decimal) x 100 as int64, and
//   `describe` says so before any data flows.
import * as weir from "./weir.js";

const UNREADABLE = ["union", "run_end_encoded"];
let mode = "copy";

export const transform = weir.transform({
  describe(schema, config) {
    if (config.mode === "cents") return [...schema, { name: "cents", type: "int64", nullable: true }];
    return schema;
  },

  init(raw) {
    ({ mode } = weir.config(raw, { mode: "copy" }));
  },

  process(batch, output) {
    if (mode === "cents") {
      const amounts = batch.column("amount", "decimal").toArray();
      // Decimal x 100 at scale 2 is its unscaled value.
      output.addValues("cents", "int64", amounts.map((a) => (a === null ? null : a.unscaled * 10n ** BigInt(2 - a.scale))));
      return;
    }
    for (const field of batch.schema) {
      const column = batch.column(field.name);
      if (UNREADABLE.includes(column.arrowType.kind)) continue;
      const values = column.toArray();
      if (column.values !== null) {
        // The raw values agree with the decoded ones wherever valid.
        Array.from(column.values).forEach((v, i) => {
          if (column.isValid(i) && !Object.is(v, values[i])) throw new Error(`${field.name}: values[${i}] ${v} but toArray ${values[i]}`);
        });
      }
      if (mode === "copy") output.addValues(field.name, field.type, values);
    }
  },
});
