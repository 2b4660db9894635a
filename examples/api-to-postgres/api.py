"""A tiny local orders API for the example: GET /v1/orders?page=N returns
{"orders": [...], "page": N} with 250 orders a page, the messy way real
APIs do — re-delivered orders (duplicate ids), odd key names, timestamps in
several shapes, missing and non-positive amounts. Deterministic.

    python3 api.py [PORT]      # default 8765
"""

import json
import random
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PAGE = 250


def orders(count=2000, seed=3):
    rng = random.Random(seed)
    out, recent = [], []
    for i in range(count):
        if recent and rng.random() < 0.1:
            out.append(dict(rng.choice(recent)))
            continue
        day, sec = 1 + i % 28, i % 60
        created = rng.choice([f"2026-11-{day:02}T10:00:{sec:02}Z",
                              f"2026-11-{day:02} 10:00:{sec:02}",
                              "not a date", None])
        amount = rng.choice([round(rng.uniform(1, 500), 2), round(rng.uniform(1, 500), 2),
                             0, -12.5, None])
        order = {"Order ID": 5000 + i, "Customer Name": f"customer {rng.randrange(300)}",
                 " Amount ": amount, "Status": rng.choice(["paid", "pending", "refunded"]),
                 "Created At": created}
        out.append(order)
        recent = (recent + [order])[-50:]
    return out


ORDERS = orders()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/v1/orders":
            self.send_error(404)
            return
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        body = json.dumps({"orders": ORDERS[(page - 1) * PAGE: page * PAGE], "page": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
