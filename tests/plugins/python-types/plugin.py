"""Test plugin for the Python helper on weir:plugin@0.2.0.

config ``mode``:
- ``copy``: decodes every column to Python values and writes it back
  under the same name and type (an unchanged output proves both
  directions exact);
- ``read``: decodes every column it can read (unions and run-end-encoded
  columns pass through undecoded) and writes nothing;
- ``show``: adds ``<column>_py``, the ``repr`` of each decoded value
  (checked against pyarrow's own ``to_pylist`` of the column);
- ``cents``: adds ``cents`` = ``amount`` (a decimal) x 100 as int64, and
  ``describe`` says so before any data flows.
"""

from decimal import Decimal

import weir

UNREADABLE = ("union", "run_end_encoded")


@weir.export
class Types:
    def __init__(self, config):
        self.mode = weir.config(config, mode="copy")["mode"]

    @staticmethod
    def describe(schema, config):
        mode = config.get("mode")
        if mode == "cents":
            return schema + [{"name": "cents", "type": "int64", "nullable": True}]
        if mode == "show":
            shown = [f for f in schema if not f["type"].startswith(UNREADABLE)]
            return schema + [{"name": f["name"] + "_py", "type": "utf8", "nullable": True} for f in shown]
        return schema

    def process(self, batch, output):
        if self.mode == "cents":
            amounts = batch.column("amount", "decimal").to_list()
            output.add("cents", "int64", [None if a is None else int(a * 100) for a in amounts])
            return
        for field in batch.schema:
            column = batch.column(field["name"])
            if column.arrow_type.kind in UNREADABLE:
                continue
            values = column.to_list()
            if column.values is not None and column.type not in ("uint8",):
                raw = [v if column.is_valid(i) else None for i, v in enumerate(column.values)]
                if repr(raw) != repr(values):  # NaN is not equal to itself
                    raise weir.WeirError(f"{field['name']}: values {raw} but to_list {values}")
            if self.mode == "copy":
                output.add(field["name"], field["type"], values)
            elif self.mode == "show":
                output.add(field["name"] + "_py", "utf8", [repr(v) for v in values])
