// weir.js — write weir transform plugins in JavaScript.
//
// A plugin module exports `transform = weir.transform({ init, process, ... })`.
// Columns arrive as typed arrays (Float64Array, BigInt64Array, Int32Array,
// ...) or, for any type, decoded values (`toArray()`: exact Decimals,
// lists, structs as objects, dictionaries as their values); a plugin
// answers through an `Output`: a keep mask and new columns. No Arrow
// library is needed (`weir_arrow.js` reads and writes Arrow's buffers).
// `weir plugin build` bundles both files beside the plugin and
// componentizes them with ComponentizeJS against weir:plugin@0.2.0.
// See plugin-sdk/js/README.md for the guide.

import { log as hostLog } from "weir:plugin/log@0.2.0";
import * as hostState from "weir:plugin/state@0.2.0";
import * as hostCompute from "weir:plugin/compute@0.2.0";
import * as arrow from "./weir_arrow.js";

export { Decimal } from "./weir_arrow.js";

function logAt(level) {
  return (message, fields = {}) =>
    hostLog(level, String(message), Object.entries(fields).map(([k, v]) => [k, String(v)]));
}

/** Logging through the host, under the node's name. */
export const log = {
  trace: logAt("trace"),
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
};

/** An error whose message weir reports for the node (any thrown value works). */
export class WeirError extends Error {}

/**
 * Reads the node's config (a JSON object) against `defaults`: every key
 * must be one of the defaults' keys and of the same type; absent keys take
 * the default. Throws a message naming the key otherwise.
 */
export function config(raw, defaults) {
  const given = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (given === null || typeof given !== "object" || Array.isArray(given)) {
    throw new WeirError("config: expected a table");
  }
  const out = { ...defaults };
  for (const [key, value] of Object.entries(given)) {
    if (!(key in defaults)) {
      throw new WeirError(`unknown config key \`${key}\` (known: ${Object.keys(defaults).join(", ")})`);
    }
    const want = defaults[key];
    if (want !== null && want !== undefined && typeof value !== typeof want) {
      throw new WeirError(`config key \`${key}\`: expected a ${typeof want}, got ${JSON.stringify(value)}`);
    }
    out[key] = value;
  }
  return out;
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * The node's key-value store, kept by the host: checkpointed with the
 * pipeline, carried over on hot reload, bounded by the node's memory
 * budget. Keys and values are Uint8Arrays.
 */
export const state = {
  get: (key) => hostState.get(key),
  put: (key, value, ttlMs) => (ttlMs === undefined ? hostState.put(key, value) : hostState.putWithTtl(key, value, BigInt(ttlMs))),
  delete: (key) => hostState.delete(key),
  scan: (start, limit) => hostState.scan(start, limit),
};

function fieldObject(f) {
  return { name: f.name, type: String(f.type), nullable: f.nullable, _field: f };
}

/**
 * One input column. `values` is a typed array for fixed-width types
 * (Float64Array for float64, BigInt64Array for int64 and timestamps, ...);
 * `get(i)` / `toArray()` decode any type.
 */
export class Column {
  constructor(field, raw, rows) {
    /** The column's name. */
    this.name = field.name;
    /** Its type, spelled like the manifest's (`int64`, `decimal(12, 2)`, `list<utf8>`). */
    this.type = String(field.type);
    /** The type's parts: kind, precision, scale, unit, tz, fields. */
    this.arrowType = field.type;
    /** Number of rows. */
    this.length = rows;
    const root = raw.nodes[raw.root];
    /** Arrow validity bitmap, or null when there are no nulls. */
    this.validity = root.buffers[0]?.length ? root.buffers[0] : null;
    const fixed = arrow.FIXED[field.type.kind];
    /** Typed array of values for fixed-width types (an Array of booleans for boolean), else null. */
    this.values = field.type.kind === "boolean"
      ? Array.from({ length: rows }, (_, i) => ((root.buffers[1][i >> 3] >> (i & 7)) & 1) === 1)
      : fixed === undefined ? null : arrow.view(root.buffers[1], fixed[0], fixed[1], rows);
    this._raw = raw;
    this._field = field;
    this._array = null;
  }

  /** Whether row `i` holds a value. */
  isValid(i) {
    return this.validity === null || ((this.validity[i >> 3] >> (i & 7)) & 1) === 1;
  }

  /** Every value, decoded (null for nulls); computed once. */
  toArray() {
    if (this._array === null) this._array = arrow.decode(this._raw, this.arrowType);
    return this._array;
  }

  /** Value `i`, or null: strings decoded, binary as Uint8Array, decimals as Decimal. */
  get(i) {
    if (!this.isValid(i)) return null;
    if (this.values !== null) return this.values[i];
    return this.toArray()[i];
  }
}

/** The input batch of one `process` call. */
export class Batch {
  constructor(handle, port = "in", portIndex = 0) {
    this._handle = handle;
    this._schema = null;
    /** Number of rows. */
    this.numRows = handle.numRows();
    /** The name of the input port it came in by ("in" for a single-input plugin). */
    this.port = port;
    /** That port's index in the declared `inputs`. */
    this.portIndex = portIndex;
  }

  /**
   * Whether this (empty) batch marks the end of its input port: a plugin
   * with several input ports gets one per port, when all of that port's
   * producers have ended (a join learns its table is complete).
   */
  get portEnded() {
    return this._handle.portEnded();
  }

  /** The schema: [{ name, type, nullable }], types spelled like the manifest's. */
  get schema() {
    if (this._schema === null) this._schema = arrow.schemaFields(this._handle.schema()).map(fieldObject);
    return this._schema;
  }

  /**
   * Fetches column `name` (only fetched columns cross into the plugin);
   * checks its type when given ("decimal" and "timestamp" accept any
   * precision, unit or zone).
   */
  column(name, type) {
    const index = this.schema.findIndex((f) => f.name === name);
    if (index < 0) throw new WeirError(`no column named \`${name}\``);
    const field = this.schema[index];
    const kind = field._field.type.kind;
    if (type !== undefined && !arrow.sameType(field.type, type) && !((type === "decimal" || type === "timestamp") && kind === type)) {
      throw new WeirError(`column \`${name}\` is ${field.type}, expected ${type}`);
    }
    return new Column(field._field, this._handle.column(index), this.numRows);
  }

  /**
   * The rows where `predicate` holds, as a keep mask for
   * `output.keepOnly(mask)`: evaluated by the host over whole columns, at
   * native speed (a loop over rows in JavaScript runs interpreted). The
   * language is SQL's expressions: `amount > 0 and status != 'refunded'`,
   * `qty * price >= 100`, `note is null` (wit/README.md, "compute").
   */
  where(predicate) {
    return hostCall(() => hostCompute.matches(this._handle, predicate));
  }

  /**
   * `expression` over every row, evaluated by the host, as a Column named
   * `name`: read it, or add it to the output with `output.addColumn`.
   * `batch.evaluate("amount_cents", "round(amount * 100)::int64")`.
   */
  evaluate(name, expression) {
    const raw = hostCall(() => hostCompute.evaluate(this._handle, name, expression));
    return new Column(arrow.schemaFields(raw.field)[0], raw.data, this.numRows);
  }

  /** The event-time watermark (microseconds since the epoch), or undefined. */
  get watermark() {
    return this._handle.watermark();
  }
}

function popcount(bits, rows) {
  let n = 0;
  for (let i = 0; i < rows; i++) n += (bits[i >> 3] >> (i & 7)) & 1;
  return n;
}

/**
 * What `process` produces on one output port: the input minus dropped rows,
 * plus new columns. The Output `process` gets is the first output port's;
 * `output.to(name)` is another port's, over the same input rows.
 */
export class Output {
  constructor(rows, port = 0, ports = null) {
    this.rows = rows;
    this._port = port;
    // Shared by every port's Output of one call: name -> index, and the
    // Outputs asked for, in the order they were.
    this._ports = ports ?? { names: new Map([["out", 0]]), opened: new Map() };
    this._ports.opened.set(port, this);
    this._mask = null;
    this._columns = [];
    this._drop = [];
  }

  /**
   * The Output for output port `name` (declared by `ports`), over the same
   * input rows. A port asked for gets a batch (a port other than the first
   * starts with no rows kept: `keep` the ones it carries); a port never
   * asked for gets nothing this call.
   */
  to(name) {
    const index = this._ports.names.get(name);
    if (index === undefined) {
      throw new WeirError(`no output port \`${name}\` (declared: ${[...this._ports.names.keys()].join(", ")})`);
    }
    const opened = this._ports.opened.get(index);
    if (opened !== undefined) return opened;
    const output = new Output(this.rows, index, this._ports);
    output.keepMask();
    return output;
  }

  /** A zeroed bitmap, one bit per input row: rows with their bit set (`keep(i)`) are kept. Without it, every row is kept. */
  keepMask() {
    if (this._mask === null) this._mask = new Uint8Array((this.rows + 7) >> 3);
    return this._mask;
  }

  /** Keeps the rows whose bit is set in `mask` (one bit per input row, as `batch.where` returns). */
  keepOnly(mask) {
    if (mask?.length !== (this.rows + 7) >> 3) {
      throw new WeirError(`keepOnly: a mask of ${(this.rows + 7) >> 3} bytes for ${this.rows} rows, not ${mask?.length}`);
    }
    // The host's bytes come as a typed array of the bindings' own realm, where
    // `instanceof Uint8Array` is false: copying them would cost a loop.
    this._mask = ArrayBuffer.isView(mask) ? mask : Uint8Array.from(mask);
  }

  /** Keeps row `i` (call for each row to keep). */
  keep(i) {
    const mask = this.keepMask();
    mask[i >> 3] |= 1 << (i & 7);
  }

  /**
   * Adds (or replaces) column `name` of a fixed-width `type` (boolean, the
   * integers and floats, date32, timestamp, ...) with one value per row;
   * returns `{ values, setValid }`: fill `values` (a typed array; an Array
   * of booleans for boolean) and call `setValid(i)` for each row with a
   * value. With `{ nulls: false }` every row is valid.
   */
  add(name, type, { nulls = true } = {}) {
    const t = arrow.parse(type);
    const fixed = arrow.FIXED[t.kind];
    if (fixed === undefined && t.kind !== "boolean") {
      throw new WeirError(`add: ${type} is not fixed-width; use addValues (or addUtf8 for strings)`);
    }
    const values = fixed === undefined ? new Array(this.rows).fill(false) : new fixed[0](this.rows);
    const validity = nulls ? new Uint8Array((this.rows + 7) >> 3) : null;
    this._columns.push(() => {
      const data = fixed === undefined ? arrow.bitmap(values, Boolean) : new Uint8Array(values.buffer);
      const present = validity === null ? this.rows : popcount(validity, this.rows);
      const node = {
        length: this.rows,
        nullCount: this.rows - present,
        buffers: [present === this.rows ? new Uint8Array(0) : validity, data],
        children: [],
        dictionary: undefined,
      };
      return { field: arrow.schemaToWit([new arrow.Field(name, t)]), data: { nodes: [node], root: 0 } };
    });
    return {
      values,
      setValid: (i) => {
        validity[i >> 3] |= 1 << (i & 7);
      },
    };
  }

  /** Adds (or replaces) a utf8 column from one string (or null) per row. */
  addUtf8(name, strings) {
    this.addValues(name, "utf8", Array.from({ length: this.rows }, (_, i) => strings[i]));
  }

  /**
   * Adds (or replaces) column `name` of any writable `type` from one value
   * per row (null or undefined: null): `decimal(p, s)` from Decimals,
   * BigInts or decimal strings (exact: more places than `s` throw, never
   * round), `list<T>` from arrays, `struct<a: T, ...>` from objects,
   * strings, binary (Uint8Arrays), and every fixed-width type.
   */
  addValues(name, type, values) {
    if (values.length !== this.rows) throw new WeirError(`column \`${name}\`: ${values.length} values for ${this.rows} rows`);
    const column = arrow.encode(arrow.parse(type), values, name);
    this._columns.push(() => column);
  }

  /**
   * Adds (or replaces) a column as it is — one from `batch.evaluate` or
   * `batch.column` — under `name` (default: its own), without touching
   * its values in JavaScript.
   */
  addColumn(column, name = column.name) {
    if (column.length !== this.rows) throw new WeirError(`column \`${name}\`: ${column.length} values for ${this.rows} rows`);
    const field = schemaToWitField(name, column._field);
    this._columns.push(() => ({ field, data: column._raw }));
  }

  /** Drops column `name` from the output. */
  drop(name) {
    this._drop.push(name);
  }

  _wit() {
    return {
      port: this._port,
      data: {
        tag: "derived",
        val: {
          selection: this._mask === null ? undefined : { tag: "mask", val: this._mask },
          columns: this._columns.map((make) => make()),
          drop: this._drop,
          rename: [],
          project: undefined,
        },
      },
    };
  }
}

// A host import's error result, thrown as a WeirError with its message.
function hostCall(f) {
  try {
    return f();
  } catch (e) {
    throw new WeirError(e?.payload ?? (e instanceof Error ? e.message : String(e)));
  }
}

// `field` (an arrow.Field) named `name`, as a one-column WIT schema (its
// own type tree copied when the name stays).
function schemaToWitField(name, field) {
  return arrow.schemaToWit([name === field.name ? field : new arrow.Field(name, field.type, true)]);
}

// A thrown value becomes the call's error string.
function guarded(f) {
  try {
    return f();
  } catch (e) {
    throw e instanceof Error ? e.message : String(e);
  }
}

// The port names `plugin.ports(config)` declares (one "in", one "out" without it).
function declaredPorts(plugin, config) {
  const declared = plugin.ports?.(config) ?? { inputs: ["in"], outputs: ["out"] };
  const inputs = declared.inputs ?? ["in"];
  const outputs = declared.outputs ?? ["out"];
  if (!Array.isArray(inputs) || !Array.isArray(outputs)) {
    throw new WeirError("ports(config) returns { inputs: [names], outputs: [names] }");
  }
  return { inputs: inputs.map(String), outputs: outputs.map(String) };
}

// A described schema ([{ name, type, nullable }], or undefined) as WIT.
function describedSchema(out) {
  if (out === undefined || out === null) return undefined;
  const fields = out.map((f) => {
    const kept = f._field;
    if (kept !== undefined && kept.name === f.name && String(kept.type) === f.type) return kept;
    return new arrow.Field(f.name, arrow.parse(f.type), f.nullable ?? true);
  });
  return arrow.schemaToWit(fields);
}

// Every output port's schema: `describePorts` over every input port, or
// `describe` over the first input port's schema, the same for each output.
function describeAll(plugin, inputs, config) {
  const ports = declaredPorts(plugin, config);
  const fields = (schema) => (schema === undefined ? undefined : arrow.schemaFields(schema).map(fieldObject));
  if (plugin.describePorts !== undefined) {
    const given = Object.fromEntries(inputs.map((p) => [p.name, fields(p.schema)]));
    const out = plugin.describePorts(given, config) ?? {};
    return ports.outputs.map((name) => ({ name, schema: describedSchema(out[name]) }));
  }
  const first = fields(inputs[0]?.schema);
  const schema = plugin.describe === undefined || first === undefined ? undefined : describedSchema(plugin.describe(first, config));
  // Not known before data (undefined): weir skips the schema checks downstream.
  return ports.outputs.map((name) => ({ name, schema }));
}

/**
 * Builds the `transform` export from a plugin object:
 *   ports(config)           optional; { inputs: [names], outputs: [names] }
 *                           (one "in" and one "out" without it)
 *   describe(schema, config) optional; the output schema before any data
 *                            ([{ name, type, nullable }]; input fields
 *                            returned as they came keep their exact type),
 *                            from the first input port's, for every output port
 *   describePorts(inputs, config) optional, instead of describe: { port:
 *                            fields } from { port: fields or undefined }
 *   init(config)            required; `config` is the parsed JSON object
 *   process(batch, output)  required; fill `output` (see Output)
 *   finish()                optional; end of input
 *   snapshot()              optional; state (Uint8Array) for a successor version
 *   restore(state)          optional; takes over a predecessor's snapshot
 */
export function transform(plugin) {
  let ports = null;
  return {
    ports(configJson) {
      return guarded(() => declaredPorts(plugin, JSON.parse(configJson)));
    },
    init(configJson) {
      guarded(() => {
        const config = JSON.parse(configJson);
        ports = declaredPorts(plugin, config);
        plugin.init(config);
      });
    },
    describe(inputs, configJson) {
      return guarded(() => describeAll(plugin, inputs, JSON.parse(configJson)));
    },
    process(input, handle) {
      return guarded(() => {
        const batch = new Batch(handle, ports.inputs[input], input);
        const names = new Map(ports.outputs.map((name, i) => [name, i]));
        const output = new Output(batch.numRows, 0, { names, opened: new Map() });
        plugin.process(batch, output);
        // No rows in, no rows out (a port's end is an empty batch).
        if (batch.numRows === 0) return [];
        return [...output._ports.opened.values()].map((o) => o._wit());
      });
    },
    finish() {
      guarded(() => plugin.finish?.());
      return [];
    },
    snapshot() {
      return guarded(() => plugin.snapshot?.() ?? undefined);
    },
    restore(state) {
      guarded(() => {
        if (plugin.restore === undefined) throw new WeirError("this transform does not restore state");
        plugin.restore(state);
      });
    },
  };
}

/** UTF-8 bytes of a string, for snapshots. */
export function encode(text) {
  return utf8Encoder.encode(text);
}

/** A string from UTF-8 bytes, for restores. */
export function decode(bytes) {
  return utf8.decode(bytes);
}
