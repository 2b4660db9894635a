"""Validates a JSON document (argv[2]) against a JSON Schema (argv[1])
with the `jsonschema` package; exits non-zero naming each violation."""
import json
import sys

from jsonschema import Draft202012Validator

schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
document = json.load(open(sys.argv[2]))
errors = sorted(Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.path))
for e in errors:
    print(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}", file=sys.stderr)
sys.exit(1 if errors else 0)
