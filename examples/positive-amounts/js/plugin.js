// positive-amounts, in JavaScript: keeps the rows whose `column` (default
// `amount`, a float64) is above zero, adds `{column}_cents` as int64
// (rounded half away from zero; null when the amount is null or out of
// range), and counts the rows it saw, logging the count at the end. The
// count is the state a new version takes over on hot reload.
import * as weir from "./weir.js";

let column = "amount";
let rowsSeen = 0;

// amount * 100 rounded half away from zero (Math.round rounds halves up).
function cents(amount) {
  const x = amount * 100;
  let rounded = Math.trunc(x);
  if (Math.abs(x - rounded) >= 0.5) rounded += Math.sign(x);
  return Math.abs(rounded) < 2 ** 63 ? BigInt(rounded) : null;
}

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

  process(batch, output) {
    const amounts = batch.column(column, "float64");
    rowsSeen += batch.numRows;
    const keep = output.keepMask();
    const added = output.add(`${column}_cents`, "int64");
    for (let row = 0; row < batch.numRows; row++) {
      if (!amounts.isValid(row)) continue;
      const amount = amounts.values[row];
      if (amount > 0) keep[row >> 3] |= 1 << (row & 7);
      const value = cents(amount);
      if (value !== null) {
        added.values[row] = value;
        added.setValid(row);
      }
    }
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
