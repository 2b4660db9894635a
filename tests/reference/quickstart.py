"""The quickstart job done by pandas, the reference weir is checked against.

Prints one line per output row: order_id|customer_name|amount|status|created_at
with amount to 6 decimals and created_at in microseconds since the epoch
(empty when missing).
"""
import sys

import pandas as pd

df = pd.read_csv(sys.argv[1])
df.columns = (
    df.columns.str.strip()
    .str.lower()
    .str.replace(r"[^0-9a-z]+", "_", regex=True)
    .str.strip("_")
)
df = df.drop_duplicates(subset=["order_id"])
df["created_at"] = pd.to_datetime(df["created_at"], errors="coerce", utc=True, format="mixed")
df = df[df["amount"] > 0]
for row in df.itertuples(index=False):
    ts = "" if pd.isna(row.created_at) else str(row.created_at.value // 1000)
    print(f"{row.order_id}|{row.customer_name}|{row.amount:.6f}|{row.status}|{ts}")
