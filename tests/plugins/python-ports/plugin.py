"""Test plugin for named ports in the Python helper (the twin of
tests/plugins/{js,c}-ports).

Input ports ``a`` and ``b``, output ports ``kept`` and ``negative``. Every
row gains ``from``, the name of the port it came in by; rows with ``n`` >= 0
leave by ``kept``, the others (negative or null) by ``negative``. Each input
port must end exactly once, after its last batch: ``finish`` fails
otherwise.
"""

import weir


@weir.export
class Ports:
    def __init__(self, config):
        self.ended = set()

    @staticmethod
    def ports(config):
        return {"inputs": ["a", "b"], "outputs": ["kept", "negative"]}

    @staticmethod
    def describe(schema, config):
        return [f for f in schema if f["name"] != "from"] + [{"name": "from", "type": "utf8", "nullable": True}]

    def process(self, batch, output):
        if batch.port_ended:
            if batch.port in self.ended:
                raise weir.WeirError(f"port {batch.port} ended twice")
            self.ended.add(batch.port)
            return
        if batch.port in self.ended:
            raise weir.WeirError(f"a batch on {batch.port} after it ended")
        n = batch.column("n", "int64").to_list()
        keep = [v is not None and v >= 0 for v in n]
        output.keep(keep)
        negative = output.to("negative")
        negative.keep([not k for k in keep])
        origin = [batch.port] * batch.num_rows
        output.add("from", "utf8", origin)
        negative.add("from", "utf8", origin)

    def finish(self):
        if self.ended != {"a", "b"}:
            raise weir.WeirError(f"ports ended: {sorted(self.ended)}; expected a and b")
