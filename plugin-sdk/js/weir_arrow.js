// weir_arrow.js — Arrow data of weir:plugin@0.2.0 in plain JavaScript, for weir.js.
//
// - Types: the WIT type tree <-> `Type`, whose `toString()` is the
//   manifest's type syntax (`int64`, `decimal(12, 2)`, `list<utf8>`,
//   `struct<id: int64, tags: list<utf8>>`, `timestamp(ms, UTC)`) and which
//   `parse` reads back.
// - Columns: a column's array nodes -> one JavaScript value per row
//   (`decode`), and values -> array nodes (`encode`). Decimals are exact
//   `Decimal`s (a BigInt and a scale, never a float), 64-bit integers and
//   temporal values BigInts, lists arrays, structs objects, maps arrays of
//   [key, value] pairs, dictionaries their values.
//
// The buffers follow Arrow's layout, little-endian like WebAssembly.

export class ArrowError extends Error {}

/** An exact decimal: `unscaled` × 10^-`scale` (12.50 is 1250n at scale 2). */
export class Decimal {
  constructor(unscaled, scale) {
    this.unscaled = BigInt(unscaled);
    this.scale = scale;
  }

  /** The exact decimal text, with the column's places ("12.50", "-0.01"). */
  toString() {
    const negative = this.unscaled < 0n;
    let digits = (negative ? -this.unscaled : this.unscaled).toString();
    if (this.scale > 0) {
      digits = digits.padStart(this.scale + 1, "0");
      digits = `${digits.slice(0, -this.scale)}.${digits.slice(-this.scale)}`;
    } else if (this.scale < 0) {
      digits += "0".repeat(-this.scale);
    }
    return (negative ? "-" : "") + digits;
  }

  toJSON() {
    return this.toString();
  }
}

const SIMPLE = [
  "null", "boolean", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
  "float16", "float32", "float64", "utf8", "large-utf8", "utf8-view", "binary", "large-binary",
  "binary-view", "date32", "date64",
];
const ALIASES = {
  bool: "boolean", int: "int64", float: "float64", double: "float64", string: "utf8",
  str: "utf8", large_string: "large_utf8", date: "date32", timestamp_us: "timestamp",
};
const UNITS = { second: "s", millisecond: "ms", microsecond: "us", nanosecond: "ns" };
const UNITS_WIT = Object.fromEntries(Object.entries(UNITS).map(([k, v]) => [v, k]));
const INTERVALS = { "year-month": "year_month", "day-time": "day_time", "month-day-nano": "month_day_nano" };
const INTERVALS_WIT = Object.fromEntries(Object.entries(INTERVALS).map(([k, v]) => [v, k]));
const LISTS = { list: "list", "large-list": "large_list", "list-view": "list_view", "large-list-view": "large_list_view" };
const LISTS_WIT = Object.fromEntries(Object.entries(LISTS).map(([k, v]) => [v, k]));
const INDEXES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"];

/** Fixed-width types: [TypedArray, bytes per value]. */
export const FIXED = {
  int8: [Int8Array, 1], int16: [Int16Array, 2], int32: [Int32Array, 4], int64: [BigInt64Array, 8],
  uint8: [Uint8Array, 1], uint16: [Uint16Array, 2], uint32: [Uint32Array, 4], uint64: [BigUint64Array, 8],
  float32: [Float32Array, 4], float64: [Float64Array, 8], date32: [Int32Array, 4], date64: [BigInt64Array, 8],
  time32: [Int32Array, 4], time64: [BigInt64Array, 8], timestamp: [BigInt64Array, 8], duration: [BigInt64Array, 8],
};

const wit = (kind) => kind.replaceAll("_", "-");
const snake = (tag) => tag.replaceAll("-", "_");

/** A named, typed, nullable field; `wit` is the subtree it was read from. */
export class Field {
  constructor(name, type, nullable = true, source = null) {
    this.name = name;
    this.type = type;
    this.nullable = nullable;
    this.source = source;
  }
}

/** An Arrow type: `kind` and its parameters. */
export class Type {
  constructor(kind, params = {}) {
    this.kind = kind;
    this.unit = params.unit;
    this.tz = params.tz;
    this.precision = params.precision ?? 0;
    this.scale = params.scale ?? 0;
    this.bits = params.bits ?? 128;
    this.size = params.size ?? 0;
    this.index = params.index;
    this.fields = params.fields ?? [];
  }

  toString() {
    const k = this.kind;
    if (k === "timestamp") {
      if (this.tz !== undefined && this.tz !== null) return `timestamp(${this.unit}, ${this.tz})`;
      return this.unit === "us" ? "timestamp" : `timestamp(${this.unit})`;
    }
    if (["time32", "time64", "duration", "interval"].includes(k)) return `${k}(${this.unit})`;
    if (k === "decimal") return `${this.bits === 128 ? "decimal" : `decimal${this.bits}`}(${this.precision}, ${this.scale})`;
    if (k === "fixed_size_binary") return `fixed_size_binary(${this.size})`;
    if (k in LISTS_WIT) return `${k}<${this.fields[0].type}>`;
    if (k === "fixed_size_list") return `fixed_size_list<${this.fields[0].type}, ${this.size}>`;
    if (k === "struct") return `struct<${this.fields.map((f) => `${quote(f.name)}: ${f.type}`).join(", ")}>`;
    if (k === "map") {
      const [key, value] = this.fields[0].type.fields;
      return `map<${key.type}, ${value.type}>`;
    }
    if (k === "dictionary") return `dictionary<${this.index}, ${this.fields[0].type}>`;
    return k;
  }
}

function quote(name) {
  return /^[A-Za-z0-9_]+$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/** Whether two spellings name the same type (spaces don't matter). */
export function sameType(a, b) {
  return a.replace(/\s+/g, "") === b.replace(/\s+/g, "");
}

// --- the WIT type tree -> Type -------------------------------------------

/** The columns of a WIT schema. */
export function schemaFields(schema) {
  return Array.from(schema.columns, (i) => field(schema.nodes, i, 0));
}

function field(nodes, i, depth) {
  if (depth > 64) throw new ArrowError("a type nested deeper than 64 levels");
  const node = nodes[i];
  return new Field(node.name, type(nodes, node.dataType, depth), node.nullable, [nodes, i]);
}

function type(nodes, dt, depth) {
  const child = (j) => field(nodes, j, depth + 1);
  const { tag, val } = dt;
  if (SIMPLE.includes(tag)) return new Type(snake(tag));
  switch (tag) {
    case "timestamp": return new Type("timestamp", { unit: UNITS[val.unit], tz: val.timezone });
    case "time32": case "time64": case "duration": return new Type(tag, { unit: UNITS[val] });
    case "interval": return new Type("interval", { unit: INTERVALS[val] });
    case "decimal32": case "decimal64": case "decimal128": case "decimal256":
      return new Type("decimal", { precision: val.precision, scale: val.scale, bits: Number(tag.slice(7)) });
    case "fixed-size-binary": return new Type("fixed_size_binary", { size: val });
    case "list": case "large-list": case "list-view": case "large-list-view":
      return new Type(LISTS[tag], { fields: [child(val)] });
    case "fixed-size-list": return new Type("fixed_size_list", { size: val.size, fields: [child(val.item)] });
    case "struct": return new Type("struct", { fields: Array.from(val, child) });
    case "map": return new Type("map", { fields: [child(val.entries)] });
    case "dictionary": return new Type("dictionary", { index: val.index, fields: [child(val.value)] });
    case "union": return new Type("union", { fields: Array.from(val.children, child) });
    default: return new Type("run_end_encoded", { fields: [child(val.runEnds), child(val.values)] });
  }
}

// --- Type -> the WIT type tree -------------------------------------------

/** A WIT schema of `fields`. */
export function schemaToWit(fields) {
  const nodes = [];
  const columns = fields.map((f) => fieldToWit(f, nodes));
  return { nodes, columns, metadata: [] };
}

function fieldToWit(f, nodes) {
  if (f.source !== null) return copySubtree(f.source[0], f.source[1], nodes);
  const at = nodes.length;
  nodes.push(null);
  nodes[at] = { name: f.name, dataType: typeToWit(f.type, nodes), nullable: f.nullable, metadata: [] };
  return at;
}

function children(dt) {
  const { tag, val } = dt;
  if (tag in LISTS) return [val];
  switch (tag) {
    case "fixed-size-list": return [val.item];
    case "struct": return Array.from(val);
    case "map": return [val.entries];
    case "dictionary": return [val.value];
    case "union": return Array.from(val.children);
    case "run-end-encoded": return [val.runEnds, val.values];
    default: return [];
  }
}

function renumber(dt, moved) {
  const { tag, val } = dt;
  const m = (j) => moved.get(j);
  if (tag in LISTS) return { tag, val: m(val) };
  switch (tag) {
    case "fixed-size-list": return { tag, val: { item: m(val.item), size: val.size } };
    case "struct": return { tag, val: Array.from(val, m) };
    case "map": return { tag, val: { entries: m(val.entries), keysSorted: val.keysSorted } };
    case "dictionary": return { tag, val: { index: val.index, value: m(val.value), ordered: val.ordered } };
    case "union": return { tag, val: { mode: val.mode, typeIds: val.typeIds, children: Array.from(val.children, m) } };
    case "run-end-encoded": return { tag, val: { runEnds: m(val.runEnds), values: m(val.values) } };
    default: return dt;
  }
}

function copySubtree(source, i, nodes) {
  const at = nodes.length;
  nodes.push(null);
  const node = source[i];
  const moved = new Map();
  for (const j of children(node.dataType)) moved.set(j, copySubtree(source, j, nodes));
  nodes[at] = { name: node.name, dataType: renumber(node.dataType, moved), nullable: node.nullable, metadata: node.metadata };
  return at;
}

function typeToWit(t, nodes) {
  const k = t.kind;
  const sub = (f) => fieldToWit(f, nodes);
  if (SIMPLE.includes(wit(k))) return { tag: wit(k) };
  switch (k) {
    case "timestamp": return { tag: k, val: { unit: UNITS_WIT[t.unit ?? "us"], timezone: t.tz ?? undefined } };
    case "time32": case "time64": case "duration": return { tag: k, val: UNITS_WIT[t.unit] };
    case "interval": return { tag: k, val: INTERVALS_WIT[t.unit] };
    case "decimal": return { tag: `decimal${t.bits}`, val: { precision: t.precision, scale: t.scale } };
    case "fixed_size_binary": return { tag: "fixed-size-binary", val: t.size };
    case "list": case "large_list": case "list_view": case "large_list_view":
      return { tag: LISTS_WIT[k], val: sub(t.fields[0]) };
    case "fixed_size_list": return { tag: "fixed-size-list", val: { item: sub(t.fields[0]), size: t.size } };
    case "struct": return { tag: "struct", val: t.fields.map(sub) };
    case "map": return { tag: "map", val: { entries: sub(t.fields[0]), keysSorted: false } };
    case "dictionary": return { tag: "dictionary", val: { index: t.index, value: sub(t.fields[0]), ordered: false } };
    default: throw new ArrowError(`can't spell a ${k} type from JavaScript`);
  }
}

// --- the type syntax -----------------------------------------------------

/** A type from its spelling: int64, decimal(12, 2), list<utf8>, struct<a: int64>, map<utf8, int64>, timestamp(ms, UTC). */
export function parse(text) {
  const p = new Parser(text);
  const t = p.type(0);
  p.ws();
  if (p.at < text.length) p.fail("unexpected text after the type");
  return t;
}

class Parser {
  constructor(text) {
    this.text = text;
    this.at = 0;
  }

  fail(what) {
    throw new ArrowError(`${JSON.stringify(this.text)}: ${what} at character ${this.at + 1}; types read like int64, decimal(12, 2), list<utf8>, struct<id: int64, tags: list<utf8>>`);
  }

  ws() {
    while (this.at < this.text.length && /\s/.test(this.text[this.at])) this.at++;
  }

  eat(c) {
    this.ws();
    if (this.text.startsWith(c, this.at)) {
      this.at += c.length;
      return true;
    }
    return false;
  }

  expect(c) {
    if (!this.eat(c)) this.fail(`expected '${c}'`);
  }

  word() {
    this.ws();
    if (this.text[this.at] === '"') {
      let out = "";
      let i = this.at + 1;
      while (i < this.text.length) {
        if (this.text[i] === '"') {
          if (this.text[i + 1] === '"') {
            out += '"';
            i += 2;
            continue;
          }
          this.at = i + 1;
          return out;
        }
        out += this.text[i++];
      }
      this.fail("unclosed quote");
    }
    const start = this.at;
    while (this.at < this.text.length && /[A-Za-z0-9_/+-]/.test(this.text[this.at])) this.at++;
    if (this.at === start) this.fail("expected a name");
    return this.text.slice(start, this.at);
  }

  int() {
    const w = this.word();
    if (!/^-?\d+$/.test(w)) this.fail(`expected a number, not ${JSON.stringify(w)}`);
    return Number(w);
  }

  type(depth) {
    if (depth > 64) this.fail("nested too deep");
    let name = this.word().toLowerCase();
    name = ALIASES[name] ?? name;
    const item = (t) => new Field("item", t);
    if (["decimal", "numeric", "decimal32", "decimal64", "decimal128", "decimal256"].includes(name)) {
      let bits = { decimal32: 32, decimal64: 64, decimal256: 256 }[name] ?? 128;
      this.expect("(");
      const precision = this.int();
      const scale = this.eat(",") ? this.int() : 0;
      this.expect(")");
      if (bits === 128 && precision > 38) bits = 256;
      return new Type("decimal", { precision, scale, bits });
    }
    if (["timestamp", "time32", "time64", "duration", "interval"].includes(name)) {
      if (!this.eat("(")) {
        if (name !== "timestamp") this.fail(`${name} needs a unit, e.g. ${name}(us)`);
        return new Type("timestamp", { unit: "us" });
      }
      const unit = this.word().toLowerCase();
      let tz;
      if (name === "timestamp" && this.eat(",")) {
        this.ws();
        const end = this.text.indexOf(")", this.at);
        if (end < 0) this.fail("expected ')'");
        tz = this.text.slice(this.at, end).trim();
        this.at = end;
      }
      this.expect(")");
      const known = name === "interval" ? INTERVALS_WIT : UNITS_WIT;
      if (!(unit in known)) this.fail(`unknown unit '${unit}' (known: ${Object.keys(known).join(", ")})`);
      return new Type(name, { unit, tz });
    }
    if (name.startsWith("timestamp_") && name.slice(10) in UNITS_WIT) return new Type("timestamp", { unit: name.slice(10) });
    if (name === "fixed_size_binary") {
      this.expect("(");
      const size = this.int();
      this.expect(")");
      return new Type(name, { size });
    }
    if (name in LISTS_WIT || name === "fixed_size_list") {
      this.expect("<");
      const inner = this.type(depth + 1);
      let size = 0;
      if (name === "fixed_size_list") {
        this.expect(",");
        size = this.int();
      }
      this.expect(">");
      return new Type(name, { size, fields: [item(inner)] });
    }
    if (name === "struct") {
      this.expect("<");
      const fields = [];
      while (!this.eat(">")) {
        if (fields.length > 0) this.expect(",");
        const fieldName = this.word();
        this.expect(":");
        fields.push(new Field(fieldName, this.type(depth + 1)));
      }
      return new Type("struct", { fields });
    }
    if (name === "map") {
      this.expect("<");
      const key = this.type(depth + 1);
      this.expect(",");
      const value = this.type(depth + 1);
      this.expect(">");
      const entries = new Type("struct", { fields: [new Field("key", key, false), new Field("value", value)] });
      return new Type("map", { fields: [new Field("entries", entries, false)] });
    }
    if (name === "dictionary") {
      this.expect("<");
      const index = this.word().toLowerCase();
      if (!INDEXES.includes(index)) this.fail(`a dictionary's keys are an integer type, not '${index}'`);
      this.expect(",");
      const values = this.type(depth + 1);
      this.expect(">");
      return new Type("dictionary", { index, fields: [new Field("values", values)] });
    }
    if (SIMPLE.includes(wit(name))) return new Type(name);
    this.fail(`unknown type '${name}'`);
  }
}

// --- column data -> JavaScript values ------------------------------------

/** `count` values of a fixed-width type from `bytes` (copied when unaligned). */
export function view(bytes, Typed, size, count) {
  if (count * size > bytes.byteLength) throw new ArrowError(`a buffer of ${bytes.byteLength} bytes for ${count} values of ${size}`);
  if (bytes.byteOffset % size !== 0) bytes = bytes.slice(0, count * size);
  return new Typed(bytes.buffer, bytes.byteOffset, count);
}

const bit = (bits, i) => ((bits[i >> 3] >> (i & 7)) & 1) === 1;
const text = new TextDecoder();

/** One JavaScript value per row of a WIT column (null for null). */
export function decode(column, t) {
  return decodeNode(column.nodes, column.root, t, 0);
}

function decodeNode(nodes, i, t, depth) {
  if (depth > 64) throw new ArrowError("an array nested deeper than 64 levels");
  const node = nodes[i];
  const values = nodeValues(nodes, node, t, depth);
  const validity = node.buffers[0];
  if (t.kind === "null" || t.kind === "union" || t.kind === "run_end_encoded" || !validity || validity.length === 0) {
    return values;
  }
  return values.map((v, j) => (bit(validity, j) ? v : null));
}

function nodeValues(nodes, node, t, depth) {
  const n = node.length;
  const b = node.buffers;
  const k = t.kind;
  const child = (j, ft) => decodeNode(nodes, j, ft, depth + 1);
  if (k === "null") return new Array(n).fill(null);
  if (k === "boolean") return Array.from({ length: n }, (_, j) => bit(b[1], j));
  if (k in FIXED) return Array.from(view(b[1], FIXED[k][0], FIXED[k][1], n));
  if (k === "float16") {
    const halves = view(b[1], Uint16Array, 2, n);
    return Array.from(halves, half);
  }
  if (k === "decimal") {
    const width = t.bits / 8;
    return Array.from({ length: n }, (_, j) => new Decimal(signed(b[1], j * width, width), t.scale));
  }
  if (["utf8", "binary", "large_utf8", "large_binary"].includes(k)) {
    const wide = k.startsWith("large");
    const offsets = view(b[1], wide ? BigInt64Array : Int32Array, wide ? 8 : 4, n + 1);
    const out = Array.from({ length: n }, (_, j) => b[2].subarray(Number(offsets[j]), Number(offsets[j + 1])));
    return k.includes("utf8") ? out.map((v) => text.decode(v)) : out.map((v) => v.slice());
  }
  if (k === "utf8_view" || k === "binary_view") {
    const dv = new DataView(b[1].buffer, b[1].byteOffset, b[1].byteLength);
    return Array.from({ length: n }, (_, j) => {
      const len = dv.getInt32(16 * j, true);
      const bytes = len <= 12
        ? b[1].subarray(16 * j + 4, 16 * j + 4 + len)
        : b[2 + dv.getInt32(16 * j + 8, true)].subarray(dv.getInt32(16 * j + 12, true), dv.getInt32(16 * j + 12, true) + len);
      return k === "utf8_view" ? text.decode(bytes) : bytes.slice();
    });
  }
  if (k === "fixed_size_binary") return Array.from({ length: n }, (_, j) => b[1].slice(j * t.size, (j + 1) * t.size));
  if (k === "interval") {
    const dv = new DataView(b[1].buffer, b[1].byteOffset, b[1].byteLength);
    if (t.unit === "year_month") return Array.from({ length: n }, (_, j) => dv.getInt32(4 * j, true));
    if (t.unit === "day_time") return Array.from({ length: n }, (_, j) => [dv.getInt32(8 * j, true), dv.getInt32(8 * j + 4, true)]);
    return Array.from({ length: n }, (_, j) => [dv.getInt32(16 * j, true), dv.getInt32(16 * j + 4, true), dv.getBigInt64(16 * j + 8, true)]);
  }
  if (k === "list" || k === "large_list") {
    const wide = k === "large_list";
    const offsets = view(b[1], wide ? BigInt64Array : Int32Array, wide ? 8 : 4, n + 1);
    const items = child(node.children[0], t.fields[0].type);
    return Array.from({ length: n }, (_, j) => items.slice(Number(offsets[j]), Number(offsets[j + 1])));
  }
  if (k === "list_view" || k === "large_list_view") {
    const wide = k === "large_list_view";
    const [Typed, size] = wide ? [BigInt64Array, 8] : [Int32Array, 4];
    const offsets = view(b[1], Typed, size, n);
    const sizes = view(b[2], Typed, size, n);
    const items = child(node.children[0], t.fields[0].type);
    return Array.from({ length: n }, (_, j) => items.slice(Number(offsets[j]), Number(offsets[j]) + Number(sizes[j])));
  }
  if (k === "fixed_size_list") {
    const items = child(node.children[0], t.fields[0].type);
    return Array.from({ length: n }, (_, j) => items.slice(j * t.size, (j + 1) * t.size));
  }
  if (k === "struct") {
    const columns = t.fields.map((f, c) => child(node.children[c], f.type));
    return Array.from({ length: n }, (_, j) => Object.fromEntries(t.fields.map((f, c) => [f.name, columns[c][j]])));
  }
  if (k === "map") {
    const offsets = view(b[1], Int32Array, 4, n + 1);
    const entries = child(node.children[0], t.fields[0].type);
    const [key, value] = t.fields[0].type.fields.map((f) => f.name);
    return Array.from({ length: n }, (_, j) => entries.slice(offsets[j], offsets[j + 1]).map((e) => [e[key], e[value]]));
  }
  if (k === "dictionary") {
    const [Typed, size] = FIXED[t.index];
    const keys = view(b[1], Typed, size, n);
    const values = child(node.dictionary, t.fields[0].type);
    // A slot behind a null may hold any key; a valid one must be in range.
    const validity = b[0];
    return Array.from(keys, (key, j) => {
      if (validity && validity.length > 0 && !bit(validity, j)) return null;
      if (Number(key) < 0 || Number(key) >= values.length) throw new ArrowError(`a ${t} column with a key past its ${values.length} values`);
      return values[Number(key)];
    });
  }
  throw new ArrowError(`can't read a ${t} column in JavaScript yet (it passes through untouched)`);
}

function signed(bytes, at, width) {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
  return BigInt.asIntN(width * 8, v);
}

function half(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

// --- JavaScript values -> column data ------------------------------------

const utf8 = new TextEncoder();

/** A WIT column (field and data) of `values` as a nullable `t`. */
export function encode(t, values, name) {
  const nodes = [];
  const root = encodeNode(t, values, nodes, name);
  return { field: schemaToWit([new Field(name, t)]), data: { nodes, root } };
}

/** A bitmap of one bit per entry, set where `present(entry)`. */
export function bitmap(entries, present) {
  const bits = new Uint8Array((entries.length + 7) >> 3);
  entries.forEach((e, i) => {
    if (present(e)) bits[i >> 3] |= 1 << (i & 7);
  });
  return bits;
}

const isNull = (v) => v === null || v === undefined;

function encodeNode(t, values, nodes, where) {
  const at = nodes.length;
  nodes.push(null);
  const nulls = values.filter(isNull).length;
  const validity = nulls > 0 ? bitmap(values, (v) => !isNull(v)) : new Uint8Array(0);
  const [buffers, children] = encodeValues(t, values, nodes, where);
  nodes[at] = { length: values.length, nullCount: nulls, buffers: [validity, ...buffers], children, dictionary: undefined };
  return at;
}

function offsetsOf(lengths, wide) {
  const out = wide ? new BigInt64Array(lengths.length + 1) : new Int32Array(lengths.length + 1);
  let at = 0;
  lengths.forEach((n, i) => {
    at += n;
    out[i + 1] = wide ? BigInt(at) : at;
  });
  return new Uint8Array(out.buffer);
}

function encodeValues(t, values, nodes, where) {
  const k = t.kind;
  if (k === "boolean") return [[bitmap(values, (v) => Boolean(v))], []];
  if (k in FIXED) {
    const [Typed] = FIXED[k];
    const big = Typed === BigInt64Array || Typed === BigUint64Array;
    const out = new Typed(values.length);
    values.forEach((v, i) => {
      if (!isNull(v)) out[i] = big ? BigInt(v) : Number(v);
    });
    return [[new Uint8Array(out.buffer)], []];
  }
  if (k === "decimal") {
    const width = t.bits / 8;
    const out = new Uint8Array(values.length * width);
    values.forEach((v, i) => {
      let u = isNull(v) ? 0n : unscaled(v, t, where);
      for (let b = 0; b < width; b++) {
        out[i * width + b] = Number(u & 0xffn);
        u >>= 8n;
      }
    });
    return [[out], []];
  }
  if (["utf8", "binary", "large_utf8", "large_binary"].includes(k)) {
    const parts = values.map((v) => (isNull(v) ? new Uint8Array(0) : k.includes("utf8") ? utf8.encode(String(v)) : Uint8Array.from(v)));
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return [[offsetsOf(parts.map((p) => p.length), k.startsWith("large")), data], []];
  }
  if (k === "list" || k === "large_list") {
    const rows = values.map((v) => (isNull(v) ? [] : Array.from(v)));
    const items = rows.flat();
    return [[offsetsOf(rows.map((r) => r.length), k === "large_list")], [encodeNode(t.fields[0].type, items, nodes, `${where}[]`)]];
  }
  if (k === "struct") {
    const children = t.fields.map((f) => encodeNode(f.type, values.map((v) => (isNull(v) ? null : v[f.name])), nodes, `${where}.${f.name}`));
    return [[], children];
  }
  throw new ArrowError(`column \`${where}\`: can't write a ${t} column from JavaScript yet (boolean, integers, floats, dates, timestamps, decimals, strings, binary, lists and structs can)`);
}

/** `v` (a Decimal, BigInt, integer or decimal string) as the unscaled integer of `t`; refuses what the scale or precision would cut. */
function unscaled(v, t, where) {
  let digits;
  let scale;
  if (v instanceof Decimal) {
    digits = v.unscaled;
    scale = v.scale;
  } else if (typeof v === "bigint") {
    digits = v;
    scale = 0;
  } else {
    const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/.exec(String(v));
    if (m === null || (m[2] === "" && !m[3])) throw new ArrowError(`column \`${where}\`: ${v} is not a decimal`);
    digits = BigInt(`${m[1]}${m[2] || "0"}${m[3] ?? ""}`);
    scale = (m[3] ?? "").length;
  }
  const shift = t.scale - scale;
  if (shift >= 0) {
    digits *= 10n ** BigInt(shift);
  } else {
    const divisor = 10n ** BigInt(-shift);
    if (digits % divisor !== 0n) throw new ArrowError(`column \`${where}\`: ${v} has more than ${t.scale} decimal places`);
    digits /= divisor;
  }
  if ((digits < 0n ? -digits : digits) >= 10n ** BigInt(t.precision)) {
    throw new ArrowError(`column \`${where}\`: ${v} has more than ${t.precision} digits`);
  }
  return digits;
}
