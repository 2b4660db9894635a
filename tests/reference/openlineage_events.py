"""Reads OpenLineage run events (NDJSON, argv[1]) and rebuilds each with
the OpenLineage project's own Python client classes (openlineage-python,
generated from the published spec 2-0-2): a missing required field is a
TypeError, a run id that isn't a UUID or an event time without a time of
day a ValueError. Also checks what the classes leave to the wire: the
event's schemaURL and every facet's _producer and _schemaURL. Prints, per
event: its type, run id, inputs and outputs with their schema columns and
row counts, and the error message (FAIL)."""
import json
import sys

from openlineage.client.generated import base
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.input_statistics_input_dataset import (
    InputStatisticsInputDatasetFacet,
)
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.output_statistics_output_dataset import (
    OutputStatisticsOutputDatasetFacet,
)
from openlineage.client.generated.schema_dataset import (
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)

SPEC = "https://openlineage.io/spec/"


def facet_ok(name, facet):
    for key in ("_producer", "_schemaURL"):
        assert facet.get(key), f"facet {name} has no {key}"
    assert facet["_schemaURL"].startswith(SPEC), facet["_schemaURL"]


def bare(facet):
    return {k: v for k, v in facet.items() if not k.startswith("_")}


def schema(facets):
    if "schema" not in facets:
        return None
    facet_ok("schema", facets["schema"])
    fields = [SchemaDatasetFacetFields(**f) for f in facets["schema"]["fields"]]
    return SchemaDatasetFacet(fields=fields)


def dataset(d, output):
    for name, facet in d.get("facets", {}).items():
        facet_ok(name, facet)
    extra = d.get("outputFacets" if output else "inputFacets", {})
    for name, facet in extra.items():
        facet_ok(name, facet)
    s = schema(d.get("facets", {}))
    facets = {"schema": s} if s else {}
    if output:
        stats = extra.get("outputStatistics")
        made = base.OutputDataset(
            namespace=d["namespace"], name=d["name"], facets=facets,
            outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(**bare(stats))}
            if stats else {},
        )
    else:
        stats = extra.get("inputStatistics")
        made = base.InputDataset(
            namespace=d["namespace"], name=d["name"], facets=facets,
            inputFacets={"inputStatistics": InputStatisticsInputDatasetFacet(**bare(stats))}
            if stats else {},
        )
    return {
        "namespace": made.namespace,
        "name": made.name,
        "columns": [f.name for f in s.fields] if s else None,
        "rows": stats.get("rowCount") if stats else None,
    }


out = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert e["schemaURL"].startswith(SPEC) and e["schemaURL"].endswith("#/$defs/RunEvent"), e["schemaURL"]
    assert e["producer"], "no producer"
    run_facets = {}
    for name, facet in e["run"].get("facets", {}).items():
        facet_ok(name, facet)
        if name == "errorMessage":
            run_facets[name] = ErrorMessageRunFacet(**bare(facet))
    for name, facet in e["job"].get("facets", {}).items():
        facet_ok(name, facet)
        if name == "jobType":
            JobTypeJobFacet(**bare(facet))
    inputs = [dataset(d, False) for d in e.get("inputs", [])]
    outputs = [dataset(d, True) for d in e.get("outputs", [])]
    event = base.RunEvent(
        eventType=base.EventType[e["eventType"]],
        eventTime=e["eventTime"],
        producer=e["producer"],
        run=base.Run(runId=e["run"]["runId"], facets=run_facets),
        job=base.Job(namespace=e["job"]["namespace"], name=e["job"]["name"]),
    )
    out.append({
        "type": event.eventType.value,
        "run": event.run.runId,
        "job": [event.job.namespace, event.job.name],
        "inputs": inputs,
        "outputs": outputs,
        "error": run_facets["errorMessage"].message if "errorMessage" in run_facets else None,
    })
json.dump(out, sys.stdout)
