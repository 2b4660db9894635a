"""positive-amounts, in Python: keeps the rows whose `column` (default
`amount`, a float64) is above zero, adds `{column}_cents` as int64 (rounded
half away from zero; null when the amount is null or out of range), and
counts the rows it saw, logging the count at the end. The count is the
state a new version takes over on hot reload."""

import weir


def quoted(name):
    """A column name as the expression language quotes it."""
    return '"' + name.replace('"', '""') + '"'


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
        # Whole columns at once, evaluated by the host with Arrow kernels: a
        # Python loop over the rows runs interpreted (~2 µs a row). `round`
        # rounds half away from zero; `::int64` gives null where the value
        # is null, NaN or out of range.
        self.rows_seen += batch.num_rows
        column = quoted(self.column)
        output.keep_only(batch.where(f"{column} > 0"))
        output.add_column(batch.evaluate(f"{self.column}_cents", f"round({column} * 100)::int64"))

    def finish(self):
        weir.log.info(f"saw {self.rows_seen} rows")

    def snapshot(self):
        return str(self.rows_seen).encode()

    def restore(self, state):
        self.rows_seen = int(state.decode())
