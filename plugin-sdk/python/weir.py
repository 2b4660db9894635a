"""weir — write weir transform plugins in Python.

A plugin module defines a class with ``__init__(self, config)`` and
``process(self, batch, output)`` (and, if it needs them, ``finish``,
``snapshot`` and ``restore``) and registers it with ``weir.export(Class)``.
Columns arrive as Python lists — decimals as ``decimal.Decimal``, lists as
lists, structs as dicts, dictionaries decoded to their values; a plugin
answers through an :class:`Output`: a keep mask and new columns of any of
those types. No Arrow library is needed (``weir_arrow`` reads and writes
Arrow's buffers). An optional ``describe(schema, config)`` static method
tells ``weir check`` the output's schema before any data flows. ``weir plugin build`` componentizes the module with
componentize-py. See plugin-sdk/python/README.md for the guide.
"""

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import weir_arrow as _arrow
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import compute as _compute
from wit_world.imports import log as _log
from wit_world.imports import state as _state
from wit_world.imports import types as _t

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


class state:
    """The node's key-value store, kept by the host: checkpointed with the
    pipeline, carried over on hot reload, bounded by the node's memory
    budget. Keys and values are bytes; ``scan`` walks keys in byte order."""

    get = staticmethod(_state.get)
    delete = staticmethod(_state.delete)
    scan = staticmethod(_state.scan)

    @staticmethod
    def put(key: bytes, value: bytes, ttl_ms: Optional[int] = None) -> None:
        """Stores ``value`` under ``key``; with ``ttl_ms``, it expires that
        much event time after the watermark passes the put."""
        if ttl_ms is None:
            _state.put(key, value)
        else:
            _state.put_with_ttl(key, value, ttl_ms)


def _field_dict(field: "_arrow.Field") -> Dict[str, Any]:
    return {"name": field.name, "type": str(field.type), "nullable": field.nullable, "_field": field}


class Column:
    """One input column: ``to_list()`` / ``get(i)`` decode it (decimals
    exact as ``Decimal``, lists, structs as dicts, dictionaries to their
    values). For numeric columns ``values`` is a memoryview of the
    column's buffer (indexable and iterable, nothing converted ahead), for
    boolean ones a list (slots behind a null hold anything: test
    ``is_valid``). ``type`` is its spelling
    (``decimal(12, 2)``, ``list<utf8>``); ``arrow_type`` its parts
    (``precision``, ``scale``, ``unit``, ``tz``, ``fields``)."""

    def __init__(self, field: "_arrow.Field", raw: Any, rows: int) -> None:
        self.name = field.name
        self.arrow_type = field.type
        self.type = str(field.type)
        self.length = rows
        root = raw.nodes[raw.root]
        buffers = root.buffers
        self.validity: Optional[bytes] = buffers[0] if buffers and buffers[0] else None
        self._raw = raw
        self._list: Optional[List[Any]] = None
        self._field = field
        fixed = _arrow._FIXED.get(field.type.kind)
        self.values: Any = None
        if field.type.kind == "boolean":
            self.values = _arrow._bits(buffers[1], rows)
        elif fixed is not None:
            # A view of the column's buffer: no value converted until read.
            code, size = fixed
            if rows * size > len(buffers[1]):
                raise WeirError(f"column `{field.name}`: {len(buffers[1])} bytes for {rows} values")
            self.values = memoryview(buffers[1])[: rows * size].cast(code)

    def is_valid(self, i: int) -> bool:
        """Whether row ``i`` holds a value."""
        return self.validity is None or (self.validity[i >> 3] >> (i & 7)) & 1 == 1

    def get(self, i: int) -> Any:
        """Value ``i``, or None."""
        return self.to_list()[i]

    def to_list(self) -> List[Any]:
        """Every value, None for nulls (decoded once, then kept)."""
        if self._list is None:
            self._list = _arrow.decode(self._raw, self.arrow_type)
        return self._list


class Batch:
    """The input batch of one ``process`` call."""

    def __init__(self, handle: Any, port: str = "in", port_index: int = 0) -> None:
        self._handle = handle
        self._fields: Optional[List[Any]] = None
        #: Number of rows.
        self.num_rows: int = handle.num_rows()
        #: The name of the input port it came in by (``"in"`` for a
        #: single-input plugin).
        self.port = port
        #: That port's index in the declared ``inputs``.
        self.port_index = port_index

    @property
    def port_ended(self) -> bool:
        """Whether this (empty) batch marks the end of its input port: a
        plugin with several input ports gets one per port, when all of that
        port's producers have ended (a join learns its table is complete)."""
        return bool(self._handle.port_ended())

    @property
    def schema(self) -> List[Dict[str, Any]]:
        """The schema: ``[{"name", "type", "nullable"}]``, ``type`` spelled
        like the manifest's (``int64``, ``decimal(12, 2)``, ``list<utf8>``)."""
        if self._fields is None:
            self._fields = [_field_dict(f) for f in _arrow.schema_fields(self._handle.schema())]
        return self._fields

    def column(self, name: str, type: Optional[str] = None) -> Column:
        """Fetches column ``name`` (only fetched columns cross into the
        plugin); checks its type when given (``"timestamp"`` and
        ``"decimal"`` accept any unit, zone, precision and scale)."""
        for index, field in enumerate(self.schema):
            if field["name"] == name:
                have = field["_field"].type
                if type is not None and not (
                    _arrow.same_type(field["type"], type) or type in ("timestamp", "decimal") and have.kind == type
                ):
                    raise WeirError(f"column `{name}` is {field['type']}, expected {type}")
                return Column(field["_field"], self._handle.column(index), self.num_rows)
        raise WeirError(f"no column named `{name}`")

    def where(self, predicate: str) -> bytes:
        """The rows where ``predicate`` holds, as a keep mask for
        ``output.keep_only(mask)``: evaluated by the host over whole
        columns, at native speed (a loop over rows in Python runs
        interpreted). The language is SQL's expressions: ``amount > 0 and
        status != 'refunded'``, ``qty * price >= 100``, ``note is null``
        (wit/README.md, "compute")."""
        return _host_call(lambda: _compute.matches(self._handle, predicate))

    def evaluate(self, name: str, expression: str) -> Column:
        """``expression`` over every row, evaluated by the host, as a Column
        named ``name``: read it, or add it with ``output.add_column``.
        ``batch.evaluate("amount_cents", "round(amount * 100)::int64")``."""
        raw = _host_call(lambda: _compute.evaluate(self._handle, name, expression))
        return Column(_arrow.schema_fields(raw.field)[0], raw.data, self.num_rows)

    @property
    def watermark(self) -> Optional[int]:
        """The event-time watermark (microseconds since the epoch), or None."""
        return self._handle.watermark()


def _host_call(f: Callable[[], Any]) -> Any:
    """A host import's result; its error raised as a WeirError."""
    try:
        return f()
    except Err as e:
        raise WeirError(str(e.value)) from None


class Output:
    """What ``process`` produces on one output port: the input minus dropped
    rows, plus new columns. The Output ``process`` gets is the first output
    port's; ``output.to(name)`` is another port's, over the same input rows."""

    def __init__(self, rows: int, port: int = 0, ports: Optional[Tuple[Dict[str, int], Dict[int, "Output"]]] = None) -> None:
        self.rows = rows
        self._port = port
        # Shared by every port's Output of one call: name -> index, and the
        # Outputs asked for, in the order they were.
        self._ports = ports if ports is not None else ({"out": 0}, {})
        self._ports[1][port] = self
        self._mask: Optional[bytes] = None
        self._columns: List[Any] = []
        self._drop: List[str] = []

    def to(self, name: str) -> "Output":
        """The Output for output port ``name`` (declared by ``ports``), over
        the same input rows. A port asked for gets a batch (a port other
        than the first starts with no rows kept: ``keep`` the ones it
        carries); a port never asked for gets nothing this call."""
        names, opened = self._ports
        index = names.get(name)
        if index is None:
            raise WeirError(f"no output port `{name}` (declared: {', '.join(names)})")
        if index in opened:
            return opened[index]
        output = Output(self.rows, index, self._ports)
        output._mask = bytes((self.rows + 7) >> 3)
        return output

    def keep(self, rows: List[bool]) -> None:
        """Keeps the rows whose entry is true (one per input row). Without a
        call, every row is kept."""
        if len(rows) != self.rows:
            raise WeirError(f"keep: {len(rows)} entries for {self.rows} rows")
        self._mask = _arrow._bitmap(rows)

    def keep_only(self, mask: bytes) -> None:
        """Keeps the rows whose bit is set in ``mask`` (one bit per input
        row, as ``batch.where`` returns)."""
        if len(mask) != (self.rows + 7) >> 3:
            raise WeirError(f"keep_only: a mask of {(self.rows + 7) >> 3} bytes for {self.rows} rows")
        self._mask = bytes(mask)

    def add_column(self, column: Column, name: Optional[str] = None) -> None:
        """Adds (or replaces) a column as it is — one from ``batch.evaluate``
        or ``batch.column`` — under ``name`` (default: its own), without
        touching its values in Python."""
        name = column.name if name is None else name
        if column.length != self.rows:
            raise WeirError(f"column `{name}`: {column.length} values for {self.rows} rows")
        field = column._field if name == column.name else _arrow.Field(name, column.arrow_type)
        self._columns.append(_t.Column(_arrow.schema_to_wit([field]), column._raw))

    def add(self, name: str, type: str, values: List[Any]) -> None:
        """Adds (or replaces) column ``name`` of ``type`` from one value per
        row; None is null. ``type``: boolean, the integers and floats,
        utf8, large_utf8, binary, date32, ``timestamp`` (µs;
        ``timestamp(ms, UTC)`` …, values are integers), ``decimal(p, s)``
        (Decimal, int or str values, written exactly: a value with more
        places than ``s`` is an error, never rounded), ``list<T>``,
        ``struct<a: T, …>`` (dict values)."""
        if len(values) != self.rows:
            raise WeirError(f"column `{name}`: {len(values)} values for {self.rows} rows")
        self._columns.append(_arrow.encode(_arrow.parse(type), values, name))

    def drop(self, name: str) -> None:
        """Drops column ``name`` from the output."""
        self._drop.append(name)

    def _wit(self) -> Any:
        selection = None if self._mask is None else _t.Selection_Mask(self._mask)
        derived = _t.Derived(selection=selection, columns=self._columns, drop=self._drop, rename=[], project=None)
        return _t.Output(self._port, _t.OutputData_Derived(derived))


_plugin_class: Optional[Callable[[Dict[str, Any]], Any]] = None
_plugin: Any = None


def export(cls: Callable[[Dict[str, Any]], Any]) -> Callable[[Dict[str, Any]], Any]:
    """Registers the plugin class: weir calls ``cls(config)`` once, then
    ``process(batch, output)`` for every batch, ``finish()`` at the end,
    and ``snapshot()`` / ``restore(state)`` across hot reloads. Called on
    the class, before any instance: ``ports(config)`` (optional; named
    ports, ``{"inputs": [...], "outputs": [...]}``), ``describe(schema,
    config)`` or ``describe_ports(inputs, config)`` (optional; output
    schemas for ``weir check``)."""
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
        if not code.co_filename.endswith(("weir.py", "weir_arrow.py")):
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
    except (WeirError, _arrow.ArrowError) as e:
        raise Err(str(e)[:2048])
    except Exception as e:  # noqa: BLE001 — any failure is the node's error
        text = f"{type(e).__name__}: {e}"[:2048]
        where = _where(e)
        raise Err(f"{text} (at {where})" if where else text)


def _instance() -> Any:
    if _plugin is None:
        raise WeirError("init was not called")
    return _plugin


def _declared_ports(config: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """The port names the plugin class's ``ports(config)`` declares (one
    ``in`` and one ``out`` without it)."""
    ports = getattr(_plugin_class, "ports", None)
    declared = ports(config) if ports is not None else {}
    if not isinstance(declared, dict):
        raise WeirError('ports(config) returns {"inputs": [names], "outputs": [names]}')
    inputs = [str(n) for n in declared.get("inputs", ["in"])]
    outputs = [str(n) for n in declared.get("outputs", ["out"])]
    return inputs, outputs


def _fields(schema: Any) -> Optional[List[Dict[str, Any]]]:
    return None if schema is None else [_field_dict(f) for f in _arrow.schema_fields(schema)]


def _described(out: Optional[List[Dict[str, Any]]]) -> Any:
    """A described schema (``[{"name", "type", "nullable"}]`` or None) as WIT."""
    if out is None:
        return None
    described = []
    for f in out:
        kept = f.get("_field")
        if kept is not None and kept.name == f["name"] and str(kept.type) == f["type"]:
            described.append(kept)
        else:
            described.append(_arrow.Field(f["name"], _arrow.parse(f["type"]), f.get("nullable", True)))
    return _arrow.schema_to_wit(described)


def _describe(inputs: List[Any], config: str) -> List[Any]:
    """Every output port's schema: ``describe_ports`` over every input port,
    or ``describe`` over the first input port's, the same for each output.
    None: not known before data (weir skips the checks downstream)."""
    parsed = json.loads(config)
    _, outputs = _declared_ports(parsed)
    describe_ports = getattr(_plugin_class, "describe_ports", None)
    if describe_ports is not None:
        out = describe_ports({p.name: _fields(p.schema) for p in inputs}, parsed) or {}
        return [_t.PortSchema(name, _described(out.get(name))) for name in outputs]
    describe = getattr(_plugin_class, "describe", None)
    first = _fields(inputs[0].schema) if inputs else None
    schema = None if describe is None or first is None else _described(describe(first, parsed))
    return [_t.PortSchema(name, schema) for name in outputs]


_ports: Tuple[List[str], List[str]] = (["in"], ["out"])


class Transform(exports.Transform):
    """The ``weir:plugin/transform`` export, dispatching to the plugin class."""

    def ports(self, config: str) -> Any:
        return _guarded(lambda: _t.PortNames(*_declared_ports(json.loads(config))))

    def init(self, config: str) -> None:
        def run() -> None:
            global _plugin, _ports
            if _plugin_class is None:
                raise WeirError("no plugin registered: call weir.export(YourClass) in plugin.py")
            parsed = json.loads(config)
            _ports = _declared_ports(parsed)
            _plugin = _plugin_class(parsed)

        _guarded(run)

    def describe(self, inputs: List[Any], config: str) -> List[Any]:
        return _guarded(lambda: _describe(inputs, config))

    def process(self, input: int, batch: Any) -> List[Any]:
        def run() -> List[Any]:
            inputs, outputs = _ports
            wrapped = Batch(batch, inputs[input], input)
            output = Output(wrapped.num_rows, 0, ({name: i for i, name in enumerate(outputs)}, {}))
            _instance().process(wrapped, output)
            if wrapped.num_rows == 0:
                return []  # no rows in, no rows out (a port's end is an empty batch)
            return [o._wit() for o in output._ports[1].values()]

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
