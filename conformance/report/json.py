"""The JSON report: the ConformanceReport model, validated against the exported schema before it is written."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from llmos_std.export import schema_files
from llmos_std.report import ConformanceReport

from conformance.verdicts import KitError


def to_json(report: ConformanceReport) -> str:
    document = json.loads(report.model_dump_json())
    schema = schema_files()["ConformanceReport.json"]
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    if errors:
        raise KitError(f"the kit built a report its own schema refuses: {errors[0].message}")
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_json(report: ConformanceReport, path: Path) -> None:
    path.write_text(to_json(report), encoding="utf-8")
