// weir.js — write weir transform plugins in JavaScript.
//
// A plugin module exports `transform = weir.transform({ init, process, ... })`.
// Columns arrive as typed arrays (Float64Array, BigInt64Array, Int32Array,
// ...), a plugin answers through an `Output`: a keep mask and new columns.
// No Arrow library is needed. `weir plugin build` bundles this file beside
// the plugin and componentizes both with ComponentizeJS.
// See plugin-sdk/js/README.md for the guide.

import { log as hostLog } from "weir:plugin/log@0.1.0";

/** The logical types weir exchanges with plugins, by WIT tag. */
export const TYPES = [
  "boolean", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
  "uint64", "float32", "float64", "utf8", "binary", "date32", "timestamp",
];

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

/** One input column: `values` is a typed array (or, for utf8 and binary, use `get`). */
export class Column {
  constructor(name, raw, rows) {
    /** The column's name. */
    this.name = name;
    /** Its type name, one of TYPES. */
    this.type = raw.dataType.tag;
    /** Number of rows. */
    this.length = rows;
    /** Typed array of values (Float64Array for float64, BigInt64Array for int64 and timestamp, ...). */
    this.values = raw.values.tag === "var" ? null : raw.values.val;
    /** Arrow validity bitmap, or null when there are no nulls. */
    this.validity = raw.validity ?? null;
    this._var = raw.values.tag === "var" ? raw.values.val : null;
  }

  /** Whether row `i` holds a value. */
  isValid(i) {
    return this.validity === null || ((this.validity[i >> 3] >> (i & 7)) & 1) === 1;
  }

  /** Value `i`, or null; strings are decoded, binary values are Uint8Arrays. */
  get(i) {
    if (!this.isValid(i)) return null;
    if (this._var === null) return this.values[i];
    const bytes = this._var.data.subarray(this._var.offsets[i], this._var.offsets[i + 1]);
    return this.type === "utf8" ? utf8.decode(bytes) : bytes;
  }
}

/** The input batch of one `process` call. */
export class Batch {
  constructor(handle) {
    this._handle = handle;
    this._schema = null;
    /** Number of rows. */
    this.numRows = handle.numRows();
  }

  /** The schema: [{ name, type, nullable }]. */
  get schema() {
    if (this._schema === null) {
      this._schema = this._handle.schema().map((f) => ({ name: f.name, type: f.dataType.tag, nullable: f.nullable }));
    }
    return this._schema;
  }

  /** Fetches column `name` (only fetched columns cross into the plugin); checks its type when given. */
  column(name, type) {
    const index = this.schema.findIndex((f) => f.name === name);
    if (index < 0) throw new WeirError(`no column named \`${name}\``);
    const actual = this.schema[index].type;
    if (type !== undefined && actual !== type) {
      throw new WeirError(`column \`${name}\` is ${actual}, expected ${type}`);
    }
    return new Column(name, this._handle.column(index), this.numRows);
  }

  /** The event-time watermark (microseconds since the epoch), or undefined. */
  get watermark() {
    return this._handle.watermark();
  }
}

const VALUES = {
  boolean: ["bool", (n) => new Array(n).fill(false)],
  int32: ["s32", (n) => new Int32Array(n)],
  int64: ["s64", (n) => new BigInt64Array(n)],
  float64: ["f64", (n) => new Float64Array(n)],
};

/** What `process` produces: the input minus dropped rows, plus new columns. */
export class Output {
  constructor(rows) {
    this.rows = rows;
    this._mask = null;
    this._columns = [];
    this._drop = [];
  }

  /** A zeroed bitmap, one bit per input row: rows with their bit set (`keep(i)`) are kept. Without it, every row is kept. */
  keepMask() {
    if (this._mask === null) this._mask = new Uint8Array((this.rows + 7) >> 3);
    return this._mask;
  }

  /** Keeps row `i` (call for each row to keep). */
  keep(i) {
    const mask = this.keepMask();
    mask[i >> 3] |= 1 << (i & 7);
  }

  /**
   * Adds (or replaces) column `name` of `type` (boolean, int32, int64,
   * float64) with one value per row; returns `{ values, setValid }`: fill
   * `values` (a typed array) and call `setValid(i)` for each row with a
   * value. With `{ nulls: false }` every row is valid.
   */
  add(name, type, { nulls = true } = {}) {
    const spec = VALUES[type];
    if (spec === undefined) throw new WeirError(`can't add a column of type ${type} (use addUtf8 for strings)`);
    const values = spec[1](this.rows);
    const validity = nulls ? new Uint8Array((this.rows + 7) >> 3) : undefined;
    this._columns.push({ name, column: { dataType: { tag: type }, values: { tag: spec[0], val: values }, validity } });
    return {
      values,
      setValid: (i) => {
        validity[i >> 3] |= 1 << (i & 7);
      },
    };
  }

  /** Adds (or replaces) a utf8 column from one string (or null) per row. */
  addUtf8(name, strings) {
    const offsets = new Int32Array(this.rows + 1);
    const validity = new Uint8Array((this.rows + 7) >> 3);
    const parts = [];
    let at = 0;
    for (let i = 0; i < this.rows; i++) {
      offsets[i] = at;
      if (strings[i] === null || strings[i] === undefined) continue;
      const bytes = utf8Encoder.encode(String(strings[i]));
      parts.push([at, bytes]);
      at += bytes.length;
      validity[i >> 3] |= 1 << (i & 7);
    }
    offsets[this.rows] = at;
    const data = new Uint8Array(at);
    for (const [start, bytes] of parts) data.set(bytes, start);
    this._columns.push({ name, column: { dataType: { tag: "utf8" }, values: { tag: "var", val: { offsets, data } }, validity } });
  }

  /** Drops column `name` from the output. */
  drop(name) {
    this._drop.push(name);
  }

  _wit() {
    return {
      tag: "derived",
      val: {
        selection: this._mask === null ? undefined : { tag: "mask", val: this._mask },
        columns: this._columns,
        drop: this._drop,
        rename: [],
        project: undefined,
      },
    };
  }
}

// A thrown value becomes the call's error string.
function guarded(f) {
  try {
    return f();
  } catch (e) {
    throw e instanceof Error ? e.message : String(e);
  }
}

/**
 * Builds the `transform` export from a plugin object:
 *   init(config)            required; `config` is the parsed JSON object
 *   process(batch, output)  required; fill `output` (see Output)
 *   finish()                optional; end of input
 *   snapshot()              optional; state (Uint8Array) for a successor version
 *   restore(state)          optional; takes over a predecessor's snapshot
 */
export function transform(plugin) {
  return {
    init(configJson) {
      guarded(() => plugin.init(JSON.parse(configJson)));
    },
    describe(_input, _config) {
      // Not known before data: weir skips the schema checks downstream.
      return undefined;
    },
    process(handle) {
      return guarded(() => {
        const batch = new Batch(handle);
        const output = new Output(batch.numRows);
        plugin.process(batch, output);
        return [output._wit()];
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
