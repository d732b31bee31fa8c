"""Render a Report: the table a person reads and the JSON document monitoring parses."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from k8sreach.result import CheckResult, Report, Status

SCHEMA = "k8sreach.doctor/v1"
_DETAIL_WIDTH = 72


def to_document(report: Report) -> dict[str, Any]:
    """The `k8sreach.doctor/v1` document (see README, "JSON output")."""
    first = report.first_failure
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "target": report.target,
        "reachable": report.reachable,
        "first_failure": first.id if first else None,
        "duration_ms": report.duration_ms,
        "checks": [_check_doc(r) for r in report.results],
    }
    if report.load_errors:
        doc["load_errors"] = list(report.load_errors)
    return doc


def _check_doc(result: CheckResult) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": result.id,
        "hop": result.hop.value,
        "status": result.status.value,
        "summary": result.summary,
        "evidence": result.evidence,
        "remediation": result.remediation,
        "duration_ms": result.duration_ms,
        "address": result.address,
    }
    if result.caused_by:
        doc["caused_by"] = result.caused_by
    return doc


def render_json(report: Report) -> str:
    return json.dumps(to_document(report), indent=2, sort_keys=False, default=str)


def _status_cell(result: CheckResult) -> str:
    return result.status.value.upper()


def heading(target: dict[str, Any]) -> str:
    """One line naming what was diagnosed: a Service, a URL, or an Ingress."""
    port = target.get("port") or "unknown"
    if target.get("service"):
        return (
            f"k8sreach doctor {target['service']}.{target['namespace']}"
            f" ({target['fqdn']}, port {port})"
        )
    if target.get("url"):
        return f"k8sreach doctor {target['url']} (port {port})"
    return f"k8sreach doctor --ingress {target.get('ingress')} -n {target.get('namespace')}"


def render_table(report: Report) -> str:
    """The chain in path order, then what to do about the first failure."""
    from tabulate import tabulate

    rows = []
    for r in report.results:
        detail = r.summary
        if r.caused_by and r.caused_by not in detail:
            detail = f"{detail} (caused by {r.caused_by})"
        rows.append(
            [
                r.hop.value,
                r.address or "-",
                r.id,
                _status_cell(r),
                "\n".join(textwrap.wrap(detail, _DETAIL_WIDTH, break_on_hyphens=False)) or "-",
            ]
        )
    lines = [
        heading(report.target),
        "",
        tabulate(rows, headers=["HOP", "ADDRESS", "CHECK", "STATUS", "DETAIL"], tablefmt="simple"),
        "",
    ]
    for err in report.load_errors:
        lines.append(f"warning: {err}")
    first = report.first_failure
    verdict = "reachable" if report.reachable else "NOT reachable"
    failures = sum(1 for r in report.results if r.status is Status.FAIL)
    if report.reachable and failures:
        verdict += f" (the Service answered), but {failures} check(s) failed"
    lines.append(f"Result: {verdict} ({report.duration_ms:.0f} ms)")
    if first is not None:
        lines += ["", f"First failure: {first.id} ({first.hop.value}): {first.summary}"]
        if first.remediation:
            lines += ["What to do:", textwrap.indent(first.remediation.rstrip(), "  ")]
    errors = [r for r in report.results if r.status is Status.ERROR]
    for r in errors:
        lines.append(f"error in {r.id}: {r.summary} (rerun with --debug for the traceback)")
    warns = [
        r for r in report.results if r.status is Status.WARN and r.remediation and not r.caused_by
    ]
    for r in warns:
        lines += [
            "",
            f"Warning: {r.id}: {r.summary}",
            textwrap.indent((r.remediation or "").rstrip(), "  "),
        ]
    return "\n".join(lines) + "\n"
