"""Parses a Prometheus text exposition (stdin) with the Prometheus
project's own Python parser and prints it as JSON: for each family, its
type and samples as [name, labels, value]. A malformed exposition makes
the parser raise, and this script exit non-zero."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
