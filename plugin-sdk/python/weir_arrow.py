"""Arrow data of ``weir:plugin@0.2.0`` in plain Python, for ``weir.py``.

- Types: the WIT type tree <-> :class:`Type`, whose ``str`` is the
  manifest's type syntax (``int64``, ``decimal(12, 2)``, ``list<utf8>``,
  ``struct<id: int64, tags: list<utf8>>``, ``timestamp(ms, UTC)``) and
  which :func:`parse` reads back.
- Columns: a column's array nodes -> one Python value per row
  (:func:`decode`), and Python values -> array nodes (:func:`encode`).
  Decimals are ``decimal.Decimal`` (exact, never a float), lists are
  lists, structs are dicts, maps are lists of ``(key, value)`` pairs,
  dictionaries are their values.

The buffers follow Arrow's layout (little-endian, like WebAssembly), which
``array``/``memoryview`` read and write without a per-value Python loop
for the fixed-width types.
"""

import struct
from array import array
from decimal import Decimal
from typing import Any, List, Optional, Tuple

from wit_world.imports import types as _t


class ArrowError(Exception):
    """A type or value this helper can't read or write."""


_SIMPLE = {
    _t.DataType_Null: "null",
    _t.DataType_Boolean: "boolean",
    _t.DataType_Int8: "int8",
    _t.DataType_Int16: "int16",
    _t.DataType_Int32: "int32",
    _t.DataType_Int64: "int64",
    _t.DataType_Uint8: "uint8",
    _t.DataType_Uint16: "uint16",
    _t.DataType_Uint32: "uint32",
    _t.DataType_Uint64: "uint64",
    _t.DataType_Float16: "float16",
    _t.DataType_Float32: "float32",
    _t.DataType_Float64: "float64",
    _t.DataType_Utf8: "utf8",
    _t.DataType_LargeUtf8: "large_utf8",
    _t.DataType_Utf8View: "utf8_view",
    _t.DataType_Binary: "binary",
    _t.DataType_LargeBinary: "large_binary",
    _t.DataType_BinaryView: "binary_view",
    _t.DataType_Date32: "date32",
    _t.DataType_Date64: "date64",
}
_SIMPLE_WIT = {name: cls for cls, name in _SIMPLE.items()}
_ALIASES = {"bool": "boolean", "int": "int64", "float": "float64", "double": "float64",
            "string": "utf8", "str": "utf8", "large_string": "large_utf8", "date": "date32",
            "timestamp_us": "timestamp"}

_UNITS = {_t.TimeUnit.SECOND: "s", _t.TimeUnit.MILLISECOND: "ms",
          _t.TimeUnit.MICROSECOND: "us", _t.TimeUnit.NANOSECOND: "ns"}
_UNITS_WIT = {name: unit for unit, name in _UNITS.items()}
_INTERVALS = {_t.IntervalUnit.YEAR_MONTH: "year_month", _t.IntervalUnit.DAY_TIME: "day_time",
              _t.IntervalUnit.MONTH_DAY_NANO: "month_day_nano"}
_INTERVALS_WIT = {name: unit for unit, name in _INTERVALS.items()}
_INDEX = {_t.IndexType.INT8: "int8", _t.IndexType.INT16: "int16", _t.IndexType.INT32: "int32",
          _t.IndexType.INT64: "int64", _t.IndexType.UINT8: "uint8", _t.IndexType.UINT16: "uint16",
          _t.IndexType.UINT32: "uint32", _t.IndexType.UINT64: "uint64"}
_INDEX_WIT = {name: index for index, name in _INDEX.items()}
_DECIMALS = {_t.DataType_Decimal32: 32, _t.DataType_Decimal64: 64,
             _t.DataType_Decimal128: 128, _t.DataType_Decimal256: 256}
_DECIMALS_WIT = {bits: cls for cls, bits in _DECIMALS.items()}
_LISTS = {_t.DataType_List: "list", _t.DataType_LargeList: "large_list",
          _t.DataType_ListView: "list_view", _t.DataType_LargeListView: "large_list_view"}
_LISTS_WIT = {name: cls for cls, name in _LISTS.items()}

#: Fixed-width integer and float types: (array typecode, bytes per value).
_FIXED = {"int8": ("b", 1), "int16": ("h", 2), "int32": ("i", 4), "int64": ("q", 8),
          "uint8": ("B", 1), "uint16": ("H", 2), "uint32": ("I", 4), "uint64": ("Q", 8),
          "float32": ("f", 4), "float64": ("d", 8), "date32": ("i", 4), "date64": ("q", 8),
          "time32": ("i", 4), "time64": ("q", 8), "timestamp": ("q", 8), "duration": ("q", 8)}


class Field:
    """A named, typed, nullable field of a schema or a nested type."""

    __slots__ = ("name", "type", "nullable", "wit")

    def __init__(self, name: str, type: "Type", nullable: bool = True, wit: Any = None) -> None:
        self.name, self.type, self.nullable = name, type, nullable
        #: The WIT subtree this field was read from, (nodes, index): written
        #: back as is when the field goes back unchanged (keeps what the
        #: type syntax doesn't spell: item names, metadata, unions).
        self.wit = wit


class Type:
    """An Arrow type. ``kind`` is its name (``int64``, ``decimal``,
    ``list``, ``struct``, ``timestamp``, …); the other attributes are its
    parameters: ``unit``, ``tz``, ``precision``, ``scale``, ``bits`` (of a
    decimal), ``size`` (fixed-size types), ``index`` (a dictionary's key
    type), ``fields`` (children)."""

    def __init__(self, kind: str, **params: Any) -> None:
        self.kind = kind
        self.unit: Optional[str] = params.get("unit")
        self.tz: Optional[str] = params.get("tz")
        self.precision: int = params.get("precision", 0)
        self.scale: int = params.get("scale", 0)
        self.bits: int = params.get("bits", 128)
        self.size: int = params.get("size", 0)
        self.index: Optional[str] = params.get("index")
        self.fields: List[Field] = params.get("fields", [])

    def __str__(self) -> str:
        k = self.kind
        if k == "timestamp":
            if self.tz is not None:
                return f"timestamp({self.unit}, {self.tz})"
            return "timestamp" if self.unit == "us" else f"timestamp({self.unit})"
        if k in ("time32", "time64", "duration", "interval"):
            return f"{k}({self.unit})"
        if k == "decimal":
            name = "decimal" if self.bits == 128 else f"decimal{self.bits}"
            return f"{name}({self.precision}, {self.scale})"
        if k == "fixed_size_binary":
            return f"fixed_size_binary({self.size})"
        if k in _LISTS_WIT:
            return f"{k}<{self.fields[0].type}>"
        if k == "fixed_size_list":
            return f"fixed_size_list<{self.fields[0].type}, {self.size}>"
        if k == "struct":
            return "struct<" + ", ".join(f"{_quote(f.name)}: {f.type}" for f in self.fields) + ">"
        if k == "map":
            entries = self.fields[0].type.fields
            return f"map<{entries[0].type}, {entries[1].type}>"
        if k == "dictionary":
            return f"dictionary<{self.index}, {self.fields[0].type}>"
        return k


def _quote(name: str) -> str:
    plain = name and all(c.isalnum() or c == "_" for c in name)
    return name if plain else '"' + name.replace('"', '""') + '"'


def same_type(a: str, b: str) -> bool:
    """Whether two spellings name the same type (spaces don't matter)."""
    return "".join(a.split()) == "".join(b.split())


# --- the WIT type tree -> Type ------------------------------------------

def schema_fields(schema: Any) -> List[Field]:
    """The columns of a WIT schema."""
    return [_field(schema.nodes, i, 0) for i in schema.columns]


def _field(nodes: List[Any], i: int, depth: int) -> Field:
    if depth > 64:
        raise ArrowError("a type nested deeper than 64 levels")
    node = nodes[i]
    return Field(node.name, _type(nodes, node.data_type, depth), node.nullable, (nodes, i))


def _type(nodes: List[Any], dt: Any, depth: int) -> Type:
    cls = type(dt)
    child = lambda j: _field(nodes, j, depth + 1)  # noqa: E731
    if cls in _SIMPLE:
        return Type(_SIMPLE[cls])
    if cls is _t.DataType_Timestamp:
        return Type("timestamp", unit=_UNITS[dt.value.unit], tz=dt.value.timezone)
    if cls in (_t.DataType_Time32, _t.DataType_Time64, _t.DataType_Duration):
        kind = {_t.DataType_Time32: "time32", _t.DataType_Time64: "time64"}.get(cls, "duration")
        return Type(kind, unit=_UNITS[dt.value])
    if cls is _t.DataType_Interval:
        return Type("interval", unit=_INTERVALS[dt.value])
    if cls in _DECIMALS:
        return Type("decimal", precision=dt.value.precision, scale=dt.value.scale, bits=_DECIMALS[cls])
    if cls is _t.DataType_FixedSizeBinary:
        return Type("fixed_size_binary", size=dt.value)
    if cls in _LISTS:
        return Type(_LISTS[cls], fields=[child(dt.value)])
    if cls is _t.DataType_FixedSizeList:
        return Type("fixed_size_list", size=dt.value.size, fields=[child(dt.value.item)])
    if cls is _t.DataType_Struct:
        return Type("struct", fields=[child(j) for j in dt.value])
    if cls is _t.DataType_Map:
        return Type("map", fields=[child(dt.value.entries)])
    if cls is _t.DataType_Dictionary:
        return Type("dictionary", index=_INDEX[dt.value.index], fields=[child(dt.value.value)])
    if cls is _t.DataType_Union:
        return Type("union", fields=[child(j) for j in dt.value.children])
    return Type("run_end_encoded", fields=[child(dt.value.run_ends), child(dt.value.values)])


# --- Type -> the WIT type tree ------------------------------------------

def schema_to_wit(fields: List[Field]) -> Any:
    """A WIT schema of ``fields``."""
    nodes: List[Any] = []
    roots = [_field_to_wit(f, nodes) for f in fields]
    return _t.Schema(nodes, roots, [])


def _field_to_wit(field: Field, nodes: List[Any]) -> int:
    if field.wit is not None:
        source, i = field.wit
        return _copy_subtree(source, i, nodes)
    at = len(nodes)
    nodes.append(None)
    nodes[at] = _t.FieldNode(field.name, _type_to_wit(field.type, nodes), field.nullable, [])
    return at


def _copy_subtree(source: List[Any], i: int, nodes: List[Any]) -> int:
    """Node ``i`` of ``source`` and its children, appended to ``nodes``."""
    at = len(nodes)
    nodes.append(None)
    node = source[i]
    fields = [Field(source[j].name, Type("?"), source[j].nullable, (source, j)) for j in _children(node.data_type)]
    moved = {j: _field_to_wit(f, nodes) for j, f in zip(_children(node.data_type), fields)}
    nodes[at] = _t.FieldNode(node.name, _renumber(node.data_type, moved), node.nullable, node.metadata)
    return at


def _children(dt: Any) -> List[int]:
    v = getattr(dt, "value", None)
    cls = type(dt)
    if cls in _LISTS:
        return [v]
    if cls is _t.DataType_FixedSizeList:
        return [v.item]
    if cls is _t.DataType_Struct:
        return list(v)
    if cls is _t.DataType_Map:
        return [v.entries]
    if cls is _t.DataType_Dictionary:
        return [v.value]
    if cls is _t.DataType_Union:
        return list(v.children)
    if cls is _t.DataType_RunEndEncoded:
        return [v.run_ends, v.values]
    return []


def _renumber(dt: Any, moved: dict) -> Any:
    cls, v = type(dt), getattr(dt, "value", None)
    if cls in _LISTS:
        return cls(moved[v])
    if cls is _t.DataType_FixedSizeList:
        return cls(_t.FixedSizeListType(moved[v.item], v.size))
    if cls is _t.DataType_Struct:
        return cls([moved[j] for j in v])
    if cls is _t.DataType_Map:
        return cls(_t.MapType(moved[v.entries], v.keys_sorted))
    if cls is _t.DataType_Dictionary:
        return cls(_t.DictionaryType(v.index, moved[v.value], v.ordered))
    if cls is _t.DataType_Union:
        return cls(_t.UnionType(v.mode, v.type_ids, [moved[j] for j in v.children]))
    if cls is _t.DataType_RunEndEncoded:
        return cls(_t.RunEndEncodedType(moved[v.run_ends], moved[v.values]))
    return dt


def _type_to_wit(ty: Type, nodes: List[Any]) -> Any:
    k = ty.kind
    sub = lambda f: _field_to_wit(f, nodes)  # noqa: E731
    if k in _SIMPLE_WIT:
        return _SIMPLE_WIT[k]()
    if k == "timestamp":
        return _t.DataType_Timestamp(_t.TimestampType(_UNITS_WIT[ty.unit or "us"], ty.tz))
    if k in ("time32", "time64", "duration"):
        cls = {"time32": _t.DataType_Time32, "time64": _t.DataType_Time64}.get(k, _t.DataType_Duration)
        return cls(_UNITS_WIT[ty.unit])
    if k == "interval":
        return _t.DataType_Interval(_INTERVALS_WIT[ty.unit])
    if k == "decimal":
        return _DECIMALS_WIT[ty.bits](_t.DecimalType(ty.precision, ty.scale))
    if k == "fixed_size_binary":
        return _t.DataType_FixedSizeBinary(ty.size)
    if k in _LISTS_WIT:
        return _LISTS_WIT[k](sub(ty.fields[0]))
    if k == "fixed_size_list":
        return _t.DataType_FixedSizeList(_t.FixedSizeListType(sub(ty.fields[0]), ty.size))
    if k == "struct":
        return _t.DataType_Struct([sub(f) for f in ty.fields])
    if k == "map":
        return _t.DataType_Map(_t.MapType(sub(ty.fields[0]), False))
    if k == "dictionary":
        return _t.DataType_Dictionary(_t.DictionaryType(_INDEX_WIT[ty.index], sub(ty.fields[0]), False))
    raise ArrowError(f"can't spell a {k} type from Python")


# --- the type syntax ----------------------------------------------------

def parse(text: str) -> Type:
    """A type from its spelling: ``int64``, ``decimal(12, 2)``,
    ``list<utf8>``, ``struct<a: int64, b: list<utf8>>``,
    ``map<utf8, int64>``, ``dictionary<int32, utf8>``,
    ``timestamp(ms, UTC)``, ``fixed_size_list<float32, 3>``."""
    p = _Parser(text)
    ty = p.type(0)
    p.ws()
    if p.at < len(text):
        p.fail("unexpected text after the type")
    return ty


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def fail(self, what: str) -> None:
        raise ArrowError(f"{self.text!r}: {what} at character {self.at + 1}; types read like "
                         "int64, decimal(12, 2), list<utf8>, struct<id: int64, tags: list<utf8>>")

    def ws(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def eat(self, c: str) -> bool:
        self.ws()
        if self.text.startswith(c, self.at):
            self.at += len(c)
            return True
        return False

    def expect(self, c: str) -> None:
        if not self.eat(c):
            self.fail(f"expected {c!r}")

    def word(self) -> str:
        self.ws()
        start = self.at
        if self.at < len(self.text) and self.text[self.at] == '"':
            end = self.at + 1
            out = []
            while end < len(self.text):
                if self.text[end] == '"':
                    if self.text.startswith('""', end):
                        out.append('"')
                        end += 2
                        continue
                    self.at = end + 1
                    return "".join(out)
                out.append(self.text[end])
                end += 1
            self.fail("unclosed quote")
        while self.at < len(self.text) and (self.text[self.at].isalnum() or self.text[self.at] in "_/+-"):
            self.at += 1
        if self.at == start:
            self.fail("expected a name")
        return self.text[start:self.at]

    def int(self) -> int:
        word = self.word()
        try:
            return int(word)
        except ValueError:
            self.fail(f"expected a number, not {word!r}")
        return 0

    def type(self, depth: int) -> Type:
        if depth > 64:
            self.fail("nested too deep")
        name = self.word().lower()
        name = _ALIASES.get(name, name)
        item = lambda ty: Field("item", ty)  # noqa: E731
        if name in ("decimal", "numeric", "decimal32", "decimal64", "decimal128", "decimal256"):
            bits = {"decimal32": 32, "decimal64": 64, "decimal256": 256}.get(name, 128)
            self.expect("(")
            precision = self.int()
            scale = self.int() if self.eat(",") else 0
            self.expect(")")
            if bits == 128 and precision > 38:
                bits = 256
            return Type("decimal", precision=precision, scale=scale, bits=bits)
        if name in ("timestamp", "time32", "time64", "duration", "interval"):
            if not self.eat("("):
                if name != "timestamp":
                    self.fail(f"{name} needs a unit, e.g. {name}(us)")
                return Type("timestamp", unit="us")
            unit = self.word().lower()
            tz = None
            if name == "timestamp" and self.eat(","):
                self.ws()
                end = self.text.find(")", self.at)
                if end < 0:
                    self.fail("expected ')'")
                tz, self.at = self.text[self.at:end].strip(), end
            self.expect(")")
            known = _INTERVALS_WIT if name == "interval" else _UNITS_WIT
            if unit not in known:
                self.fail(f"unknown unit {unit!r} (known: {', '.join(known)})")
            return Type(name, unit=unit, tz=tz)
        if name.startswith("timestamp_") and name[10:] in _UNITS_WIT:
            return Type("timestamp", unit=name[10:])
        if name == "fixed_size_binary":
            self.expect("(")
            size = self.int()
            self.expect(")")
            return Type(name, size=size)
        if name in _LISTS_WIT or name == "fixed_size_list":
            self.expect("<")
            inner = self.type(depth + 1)
            size = 0
            if name == "fixed_size_list":
                self.expect(",")
                size = self.int()
            self.expect(">")
            return Type(name, size=size, fields=[item(inner)])
        if name == "struct":
            self.expect("<")
            fields = []
            while not self.eat(">"):
                if fields:
                    self.expect(",")
                field_name = self.word()
                self.expect(":")
                fields.append(Field(field_name, self.type(depth + 1)))
            return Type("struct", fields=fields)
        if name == "map":
            self.expect("<")
            key = self.type(depth + 1)
            self.expect(",")
            value = self.type(depth + 1)
            self.expect(">")
            entries = Type("struct", fields=[Field("key", key, False), Field("value", value)])
            return Type("map", fields=[Field("entries", entries, False)])
        if name == "dictionary":
            self.expect("<")
            index = self.word().lower()
            if index not in _INDEX_WIT:
                self.fail(f"a dictionary's keys are an integer type, not {index!r}")
            self.expect(",")
            values = self.type(depth + 1)
            self.expect(">")
            return Type("dictionary", index=index, fields=[Field("values", values)])
        if name in _SIMPLE_WIT:
            return Type(name)
        self.fail(f"unknown type {name!r}")
        return Type(name)


# --- column data -> Python values ---------------------------------------

def decode(column: Any, ty: Type) -> List[Any]:
    """One Python value per row of a WIT column (None for null)."""
    return _decode(column.nodes, column.root, ty, 0)


def _bits(data: bytes, n: int) -> List[bool]:
    return [(data[i >> 3] >> (i & 7)) & 1 == 1 for i in range(n)]


def _ints(data: bytes, code: str, size: int, n: int) -> List[Any]:
    if n * size > len(data):
        raise ArrowError(f"a buffer of {len(data)} bytes for {n} values of {size}")
    return memoryview(data)[: n * size].cast(code).tolist()


def _decode(nodes: List[Any], i: int, ty: Type, depth: int) -> List[Any]:
    if depth > 64:
        raise ArrowError("an array nested deeper than 64 levels")
    node = nodes[i]
    n, b, k = node.length, node.buffers, ty.kind
    values = _values(nodes, node, ty, depth)
    if k in ("null", "union", "run_end_encoded") or not b or not b[0]:
        return values if k != "null" else [None] * n
    valid = _bits(b[0], n)
    return [v if ok else None for v, ok in zip(values, valid)]


def _values(nodes: List[Any], node: Any, ty: Type, depth: int) -> List[Any]:
    n, b, k = node.length, node.buffers, ty.kind
    if k == "null":
        return [None] * n
    if k == "boolean":
        return _bits(b[1], n)
    if k in _FIXED:
        code, size = _FIXED[k]
        return _ints(b[1], code, size, n)
    if k == "float16":
        return list(struct.unpack(f"<{n}e", b[1][: 2 * n]))
    if k == "decimal":
        width = ty.bits // 8
        raw = b[1]
        return [_decimal(int.from_bytes(raw[j * width:(j + 1) * width], "little", signed=True), ty.scale)
                for j in range(n)]
    if k in ("utf8", "binary", "large_utf8", "large_binary"):
        wide = k.startswith("large")
        offsets = _ints(b[1], "q" if wide else "i", 8 if wide else 4, n + 1)
        data = b[2]
        out = [data[offsets[j]:offsets[j + 1]] for j in range(n)]
        return [bytes(v).decode() for v in out] if "utf8" in k else [bytes(v) for v in out]
    if k in ("utf8_view", "binary_view"):
        return _views(b, n, k == "utf8_view")
    if k == "fixed_size_binary":
        return [bytes(b[1][j * ty.size:(j + 1) * ty.size]) for j in range(n)]
    if k == "interval":
        return _intervals(b[1], ty.unit, n)
    if k in ("list", "large_list"):
        wide = k == "large_list"
        offsets = _ints(b[1], "q" if wide else "i", 8 if wide else 4, n + 1)
        items = _decode(nodes, node.children[0], ty.fields[0].type, depth + 1)
        return [items[offsets[j]:offsets[j + 1]] for j in range(n)]
    if k in ("list_view", "large_list_view"):
        code, size = ("q", 8) if k.startswith("large") else ("i", 4)
        offsets, sizes = _ints(b[1], code, size, n), _ints(b[2], code, size, n)
        items = _decode(nodes, node.children[0], ty.fields[0].type, depth + 1)
        return [items[offsets[j]:offsets[j] + sizes[j]] for j in range(n)]
    if k == "fixed_size_list":
        items = _decode(nodes, node.children[0], ty.fields[0].type, depth + 1)
        return [items[j * ty.size:(j + 1) * ty.size] for j in range(n)]
    if k == "struct":
        columns = [_decode(nodes, c, f.type, depth + 1) for c, f in zip(node.children, ty.fields)]
        names = [f.name for f in ty.fields]
        return [dict(zip(names, row)) for row in zip(*columns)] if columns else [{} for _ in range(n)]
    if k == "map":
        offsets = _ints(b[1], "i", 4, n + 1)
        entries = _decode(nodes, node.children[0], ty.fields[0].type, depth + 1)
        key, value = (f.name for f in ty.fields[0].type.fields)
        return [[(e[key], e[value]) for e in entries[offsets[j]:offsets[j + 1]]] for j in range(n)]
    if k == "dictionary":
        code, size = _FIXED[ty.index]
        keys = _ints(b[1], code, size, n)
        values = _decode(nodes, node.dictionary, ty.fields[0].type, depth + 1)
        # A slot behind a null may hold any key; a valid one must be in range.
        valid = _bits(b[0], n) if b[0] else [True] * n
        if any(ok and not 0 <= key < len(values) for key, ok in zip(keys, valid)):
            raise ArrowError(f"a {ty} column with a key past its {len(values)} values")
        return [values[key] if ok else None for key, ok in zip(keys, valid)]
    raise ArrowError(f"can't read a {ty} column in Python yet (it passes through untouched)")


def _decimal(unscaled: int, scale: int) -> Decimal:
    # Exact whatever the digits: no decimal context (28 digits) in the way.
    sign, digits, exponent = Decimal(unscaled).as_tuple()
    return Decimal((sign, digits, exponent - scale))


def _views(b: List[bytes], n: int, text: bool) -> List[Any]:
    views, data = b[1], b[2:]
    out = []
    for j in range(n):
        view = views[16 * j:16 * j + 16]
        length = int.from_bytes(view[0:4], "little")
        if length <= 12:
            value = bytes(view[4:4 + length])
        else:
            buffer, offset = struct.unpack("<ii", view[8:16])
            value = bytes(data[buffer][offset:offset + length])
        out.append(value.decode() if text else value)
    return out


def _intervals(data: bytes, unit: str, n: int) -> List[Any]:
    if unit == "year_month":
        return _ints(data, "i", 4, n)
    if unit == "day_time":
        return [struct.unpack_from("<ii", data, 8 * j) for j in range(n)]
    return [struct.unpack_from("<iiq", data, 16 * j) for j in range(n)]


# --- Python values -> column data ---------------------------------------

def encode(ty: Type, values: List[Any], name: str) -> Any:
    """A WIT column (field and data) of ``values`` as a nullable ``ty``."""
    nodes: List[Any] = []
    root = _encode(ty, values, nodes, name)
    return _t.Column(schema_to_wit([Field(name, ty)]), _t.ColumnData(nodes, root))


def _bitmap(present: List[bool]) -> bytes:
    bits = bytearray((len(present) + 7) >> 3)
    for i, p in enumerate(present):
        if p:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def _encode(ty: Type, values: List[Any], nodes: List[Any], where: str) -> int:
    at = len(nodes)
    nodes.append(None)
    nulls = sum(v is None for v in values)
    validity = _bitmap([v is not None for v in values]) if nulls else b""
    buffers, children = _encode_values(ty, values, nodes, where)
    nodes[at] = _t.ArrayNode(len(values), nulls, [validity] + buffers, children, None)
    return at


def _encode_values(ty: Type, values: List[Any], nodes: List[Any], where: str) -> Tuple[List[bytes], List[int]]:
    k = ty.kind
    try:
        if k == "boolean":
            return [_bitmap([bool(v) for v in values])], []
        if k in _FIXED:
            code, _ = _FIXED[k]
            zero = 0.0 if code in "fd" else 0
            return [array(code, [zero if v is None else v for v in values]).tobytes()], []
        if k == "decimal":
            width = ty.bits // 8
            return [b"".join(_unscaled(v, ty).to_bytes(width, "little", signed=True) for v in values)], []
        if k in ("utf8", "binary", "large_utf8", "large_binary"):
            wide = k.startswith("large")
            data = [b"" if v is None else (str(v).encode() if "utf8" in k else bytes(v)) for v in values]
            return [array("q" if wide else "i", _offsets(map(len, data))).tobytes(), b"".join(data)], []
        if k in ("list", "large_list"):
            rows = [[] if v is None else list(v) for v in values]
            offsets = array("q" if k == "large_list" else "i", _offsets(map(len, rows)))
            items = [x for row in rows for x in row]
            return [offsets.tobytes()], [_encode(ty.fields[0].type, items, nodes, where + "[]")]
        if k == "struct":
            children = []
            for f in ty.fields:
                column = [None if v is None else v.get(f.name) for v in values]
                children.append(_encode(f.type, column, nodes, f"{where}.{f.name}"))
            return [], children
    except (TypeError, ValueError, OverflowError, struct.error) as e:
        raise ArrowError(f"column `{where}` as {ty}: {e}") from None
    raise ArrowError(f"column `{where}`: can't write a {ty} column from Python yet "
                     "(boolean, integers, floats, dates, timestamps, decimals, strings, binary, lists and structs can)")


def _offsets(lengths: Any) -> List[int]:
    out, at = [0], 0
    for n in lengths:
        at += n
        out.append(at)
    return out


def _unscaled(v: Any, ty: Type) -> int:
    """``v`` (a Decimal, int, str, or float by its shortest repr) as the
    unscaled integer of ``ty``; refuses digits the scale would drop and
    values past the precision rather than round."""
    if v is None:
        return 0
    d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    if not d.is_finite():
        raise ValueError(f"{v} has no decimal value")
    sign, digits, exponent = d.as_tuple()
    shift = exponent + ty.scale
    number = int("".join(map(str, digits)) or "0")
    if shift >= 0:
        number *= 10 ** shift
    else:
        number, dropped = divmod(number, 10 ** -shift)
        if dropped:
            raise ValueError(f"{v} has more than {ty.scale} decimal places")
    if number >= 10 ** ty.precision:
        raise ValueError(f"{v} has more than {ty.precision} digits")
    return -number if sign else number
