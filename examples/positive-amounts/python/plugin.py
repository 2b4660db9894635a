"""positive-amounts, in Python: keeps the rows whose `column` (default
`amount`, a float64) is above zero, adds `{column}_cents` as int64 (rounded
half away from zero; null when the amount is null or out of range), and
counts the rows it saw, logging the count at the end. The count is the
state a new version takes over on hot reload."""

import math

import weir

LIMIT = 2**63


def cents(amount):
    """amount * 100 rounded half away from zero (Python's round() rounds
    halves to even), or None when it doesn't fit an int64."""
    x = amount * 100
    if not math.isfinite(x):
        return None
    rounded = math.trunc(x)
    if abs(x - rounded) >= 0.5:
        rounded += 1 if x > 0 else -1
    return rounded if -LIMIT < rounded < LIMIT else None


@weir.export
class PositiveAmounts:
    def __init__(self, config):
        self.column = weir.config(config, column="amount")["column"]
        self.rows_seen = 0

    @staticmethod
    def describe(schema, config):
        """The output schema before any data: the input's columns plus the
        cents column, so `weir check` checks the nodes downstream."""
        column = weir.config(config, column="amount")["column"]
        return schema + [{"name": f"{column}_cents", "type": "int64", "nullable": True}]

    def process(self, batch, output):
        amounts = batch.column(self.column, "float64").to_list()
        self.rows_seen += batch.num_rows
        output.keep([a is not None and a > 0 for a in amounts])
        output.add(f"{self.column}_cents", "int64", [None if a is None else cents(a) for a in amounts])

    def finish(self):
        weir.log.info(f"saw {self.rows_seen} rows")

    def snapshot(self):
        return str(self.rows_seen).encode()

    def restore(self, state):
        self.rows_seen = int(state.decode())
