"""weir — write weir transform plugins in Python.

A plugin module defines a class with ``__init__(self, config)`` and
``process(self, batch, output)`` (and, if it needs them, ``finish``,
``snapshot`` and ``restore``) and registers it with ``weir.export(Class)``.
Columns arrive as Python lists (or ``bytes`` for 8-bit integers); a plugin
answers through an :class:`Output`: a keep mask and new columns. No Arrow
library is needed. ``weir plugin build`` componentizes the module with
componentize-py. See plugin-sdk/python/README.md for the guide.
"""

import json
from typing import Any, Callable, Dict, List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log as _log
from wit_world.imports import types as _t

#: The logical types weir exchanges with plugins.
TYPES = {
    _t.DataType_Boolean: "boolean",
    _t.DataType_Int8: "int8",
    _t.DataType_Int16: "int16",
    _t.DataType_Int32: "int32",
    _t.DataType_Int64: "int64",
    _t.DataType_Uint8: "uint8",
    _t.DataType_Uint16: "uint16",
    _t.DataType_Uint32: "uint32",
    _t.DataType_Uint64: "uint64",
    _t.DataType_Float32: "float32",
    _t.DataType_Float64: "float64",
    _t.DataType_Utf8: "utf8",
    _t.DataType_Binary: "binary",
    _t.DataType_Date32: "date32",
    _t.DataType_Timestamp: "timestamp",
}


class WeirError(Exception):
    """An error whose message weir reports for the node (any exception works)."""


class log:
    """Logging through the host, under the node's name."""

    @staticmethod
    def _at(level: Any, message: str, fields: Dict[str, Any]) -> None:
        _log.log(level, str(message), [(k, str(v)) for k, v in fields.items()])

    @staticmethod
    def trace(message: str, **fields: Any) -> None:
        log._at(_log.Level.TRACE, message, fields)

    @staticmethod
    def debug(message: str, **fields: Any) -> None:
        log._at(_log.Level.DEBUG, message, fields)

    @staticmethod
    def info(message: str, **fields: Any) -> None:
        log._at(_log.Level.INFO, message, fields)

    @staticmethod
    def warn(message: str, **fields: Any) -> None:
        log._at(_log.Level.WARN, message, fields)

    @staticmethod
    def error(message: str, **fields: Any) -> None:
        log._at(_log.Level.ERROR, message, fields)


def config(raw: Dict[str, Any], **defaults: Any) -> Dict[str, Any]:
    """Reads the node's config against ``defaults``: every key must be one
    of the defaults' keys and of the same type; absent keys take the
    default. Raises a message naming the key otherwise."""
    out = dict(defaults)
    for key, value in raw.items():
        if key not in defaults:
            raise WeirError(f"unknown config key `{key}` (known: {', '.join(defaults)})")
        want = defaults[key]
        # bool is an int in Python: compare exact types, but let an int
        # stand for a float.
        same = type(value) is type(want) or (type(want) is float and type(value) is int)
        if want is not None and not same:
            raise WeirError(f"config key `{key}`: expected {type(want).__name__}, got {value!r}")
        out[key] = value
    return out


class Column:
    """One input column. ``values`` is a list (``bytes`` for int8/uint8;
    for utf8 and binary use ``get`` or ``to_list``); slots behind a null
    hold anything: test ``is_valid``."""

    def __init__(self, name: str, raw: Any, rows: int) -> None:
        self.name = name
        self.type = TYPES[type(raw.data_type)]
        self.length = rows
        self.validity: Optional[bytes] = raw.validity
        if isinstance(raw.values, _t.Values_Var):
            self._var = raw.values.value
            self.values: Any = None
        else:
            self._var = None
            self.values = raw.values.value

    def is_valid(self, i: int) -> bool:
        """Whether row ``i`` holds a value."""
        return self.validity is None or (self.validity[i >> 3] >> (i & 7)) & 1 == 1

    def get(self, i: int) -> Any:
        """Value ``i``, or None; strings are decoded."""
        if not self.is_valid(i):
            return None
        if self._var is None:
            return self.values[i]
        data = self._var.data[self._var.offsets[i] : self._var.offsets[i + 1]]
        return data.decode() if self.type == "utf8" else data

    def to_list(self) -> List[Any]:
        """Every value, None for nulls."""
        if self._var is None and self.validity is None:
            return list(self.values)
        return [self.get(i) for i in range(self.length)]


class Batch:
    """The input batch of one ``process`` call."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._schema: Optional[List[Dict[str, Any]]] = None
        #: Number of rows.
        self.num_rows: int = handle.num_rows()

    @property
    def schema(self) -> List[Dict[str, Any]]:
        """The schema: ``[{"name", "type", "nullable"}]``."""
        if self._schema is None:
            self._schema = [
                {"name": f.name, "type": TYPES[type(f.data_type)], "nullable": f.nullable}
                for f in self._handle.schema()
            ]
        return self._schema

    def column(self, name: str, type: Optional[str] = None) -> Column:
        """Fetches column ``name`` (only fetched columns cross into the
        plugin); checks its type when given."""
        for index, field in enumerate(self.schema):
            if field["name"] == name:
                if type is not None and field["type"] != type:
                    raise WeirError(f"column `{name}` is {field['type']}, expected {type}")
                return Column(name, self._handle.column(index), self.num_rows)
        raise WeirError(f"no column named `{name}`")

    @property
    def watermark(self) -> Optional[int]:
        """The event-time watermark (microseconds since the epoch), or None."""
        return self._handle.watermark()


def _bitmap(present: List[bool]) -> bytes:
    bits = bytearray((len(present) + 7) >> 3)
    for i, p in enumerate(present):
        if p:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


_ADD = {
    "boolean": (_t.DataType_Boolean, _t.Values_Bool, False),
    "int32": (_t.DataType_Int32, _t.Values_S32, 0),
    "int64": (_t.DataType_Int64, _t.Values_S64, 0),
    "float64": (_t.DataType_Float64, _t.Values_F64, 0.0),
}


class Output:
    """What ``process`` produces: the input minus dropped rows, plus new columns."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._mask: Optional[bytes] = None
        self._columns: List[Any] = []
        self._drop: List[str] = []

    def keep(self, rows: List[bool]) -> None:
        """Keeps the rows whose entry is true (one per input row). Without a
        call, every row is kept."""
        if len(rows) != self.rows:
            raise WeirError(f"keep: {len(rows)} entries for {self.rows} rows")
        self._mask = _bitmap(rows)

    def add(self, name: str, type: str, values: List[Any]) -> None:
        """Adds (or replaces) column ``name`` of ``type`` (boolean, int32,
        int64, float64, utf8) from one value per row; None is null."""
        if len(values) != self.rows:
            raise WeirError(f"column `{name}`: {len(values)} values for {self.rows} rows")
        validity = None
        if any(v is None for v in values):
            validity = _bitmap([v is not None for v in values])
        if type == "utf8":
            offsets, data, at = [0] * (self.rows + 1), bytearray(), 0
            for i, v in enumerate(values):
                offsets[i] = at
                if v is not None:
                    encoded = str(v).encode()
                    data += encoded
                    at += len(encoded)
            offsets[self.rows] = at
            column = _t.Column(_t.DataType_Utf8(), _t.Values_Var(_t.VarData(offsets, bytes(data))), validity)
        elif type in _ADD:
            data_type, wrap, zero = _ADD[type]
            filled = values if validity is None else [zero if v is None else v for v in values]
            column = _t.Column(data_type(), wrap(filled), validity)
        else:
            raise WeirError(f"can't add a column of type {type}")
        self._columns.append(_t.NamedColumn(name, column))

    def drop(self, name: str) -> None:
        """Drops column ``name`` from the output."""
        self._drop.append(name)

    def _wit(self) -> Any:
        selection = None if self._mask is None else _t.Selection_Mask(self._mask)
        return _t.Output_Derived(
            _t.Derived(selection=selection, columns=self._columns, drop=self._drop, rename=[], project=None)
        )


_plugin_class: Optional[Callable[[Dict[str, Any]], Any]] = None
_plugin: Any = None


def export(cls: Callable[[Dict[str, Any]], Any]) -> Callable[[Dict[str, Any]], Any]:
    """Registers the plugin class: weir calls ``cls(config)`` once, then
    ``process(batch, output)`` for every batch, ``finish()`` at the end,
    and ``snapshot()`` / ``restore(state)`` across hot reloads."""
    global _plugin_class
    _plugin_class = cls
    return cls


def _where(e: BaseException) -> str:
    """The plugin's own frames of the traceback, innermost last (at most
    three), as ``plugin.py:12 in process``: where to look, like the Rust
    SDK's panic message."""
    # Walked by hand: the traceback module reads source lines from files,
    # which the sandbox doesn't grant.
    frames = []
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.endswith("weir.py"):
            frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return " <- ".join(reversed(frames[-3:]))


def _guarded(f: Callable[[], Any]) -> Any:
    # An exception becomes the call's error string; an unexpected one says
    # its type and where it was raised (bounded: a few frames, 2 KiB).
    try:
        return f()
    except Err:
        raise
    except WeirError as e:
        raise Err(str(e)[:2048])
    except Exception as e:  # noqa: BLE001 — any failure is the node's error
        text = f"{type(e).__name__}: {e}"[:2048]
        where = _where(e)
        raise Err(f"{text} (at {where})" if where else text)


def _instance() -> Any:
    if _plugin is None:
        raise WeirError("init was not called")
    return _plugin


class Transform(exports.Transform):
    """The ``weir:plugin/transform`` export, dispatching to the plugin class."""

    def init(self, config: str) -> None:
        def run() -> None:
            global _plugin
            if _plugin_class is None:
                raise WeirError("no plugin registered: call weir.export(YourClass) in plugin.py")
            _plugin = _plugin_class(json.loads(config))

        _guarded(run)

    def describe(self, input: Any, config: str) -> Any:
        # Not known before data: weir skips the schema checks downstream.
        return None

    def process(self, input: Any) -> List[Any]:
        def run() -> List[Any]:
            batch = Batch(input)
            output = Output(batch.num_rows)
            _instance().process(batch, output)
            return [output._wit()]

        return _guarded(run)

    def finish(self) -> List[Any]:
        finish = getattr(_instance(), "finish", None)
        if finish is not None:
            _guarded(finish)
        return []

    def snapshot(self) -> Optional[bytes]:
        snapshot = getattr(_instance(), "snapshot", None)
        return None if snapshot is None else _guarded(snapshot)

    def restore(self, state: bytes) -> None:
        restore = getattr(_instance(), "restore", None)
        if restore is None:
            raise Err("this transform does not restore state")
        _guarded(lambda: restore(state))
