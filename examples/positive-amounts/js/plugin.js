// positive-amounts, in JavaScript: keeps the rows whose `column` (default
// `amount`, a float64) is above zero, adds `{column}_cents` as int64
// (rounded half away from zero; null when the amount is null or out of
// range), and counts the rows it saw, logging the count at the end. The
// count is the state a new version takes over on hot reload.
import * as weir from "./weir.js";

let column = "amount";
let rowsSeen = 0;

// A column name as the expression language quotes it.
const quoted = (name) => `"${name.replaceAll('"', '""')}"`;

export const transform = weir.transform({
  // The output schema before any data: the input's columns plus the cents
  // column, so `weir check` checks the nodes downstream.
  describe(schema, raw) {
    const { column: name } = weir.config(raw, { column: "amount" });
    return [...schema, { name: `${name}_cents`, type: "int64", nullable: true }];
  },

  init(raw) {
    ({ column } = weir.config(raw, { column: "amount" }));
  },

  // Whole columns at once, evaluated by the host with Arrow kernels: a
  // JavaScript loop over the rows runs interpreted (~2 µs a row). `round`
  // rounds half away from zero; `::int64` gives null where the value is
  // null, NaN or out of range.
  process(batch, output) {
    rowsSeen += batch.numRows;
    output.keepOnly(batch.where(`${quoted(column)} > 0`));
    output.addColumn(batch.evaluate(`${column}_cents`, `round(${quoted(column)} * 100)::int64`));
  },

  finish() {
    weir.log.info(`saw ${rowsSeen} rows`);
  },

  snapshot() {
    return weir.encode(String(rowsSeen));
  },

  restore(state) {
    rowsSeen = Number(weir.decode(state));
  },
});
