from __future__ import annotations

import json

from k8sreach.report import render_json, render_table
from k8sreach.result import CheckResult, Hop, Report, Status


def _report(statuses, reachable=False):
    results = tuple(
        CheckResult(
            id=f"c{i}",
            hop=hop,
            status=st,
            summary=f"summary {i}",
            evidence={"n": i},
            remediation=f"fix {i}" if st is Status.FAIL else None,
            duration_ms=1.5,
            address="10.96.86.83:3306",
        )
        for i, (hop, st) in enumerate(statuses)
    )
    return Report(
        target={
            "service": "mysql-read",
            "namespace": "default",
            "fqdn": "mysql-read.default.svc.cluster.local.",
            "port": 3306,
        },
        results=results,
        reachable=reachable,
        duration_ms=12.0,
    )


def test_json_document_has_the_v1_shape():
    report = _report(
        [(Hop.CLIENT, Status.PASS), (Hop.DNS, Status.FAIL), (Hop.SERVICE, Status.SKIP)]
    )
    doc = json.loads(render_json(report))
    assert doc["schema"] == "k8sreach.doctor/v1"
    assert doc["target"] == {
        "service": "mysql-read",
        "namespace": "default",
        "fqdn": "mysql-read.default.svc.cluster.local.",
        "port": 3306,
    }
    assert doc["reachable"] is False
    assert doc["first_failure"] == "c1"
    assert doc["duration_ms"] == 12.0
    assert [c["status"] for c in doc["checks"]] == ["pass", "fail", "skip"]
    assert [c["hop"] for c in doc["checks"]] == ["client", "dns", "service"]
    required = {"id", "hop", "status", "summary", "evidence", "remediation", "duration_ms"}
    assert all(required <= set(c) for c in doc["checks"])
    assert doc["checks"][1]["remediation"] == "fix 1"
    assert doc["checks"][0]["remediation"] is None


def test_first_failure_is_null_when_nothing_failed_and_exit_is_zero():
    report = _report([(Hop.CLIENT, Status.PASS), (Hop.GATEWAY, Status.WARN)], reachable=True)
    doc = json.loads(render_json(report))
    assert doc["first_failure"] is None
    assert doc["reachable"] is True
    assert report.exit_code == 0


def test_exit_codes_fail_beats_error():
    assert _report([(Hop.CLIENT, Status.ERROR), (Hop.DNS, Status.FAIL)]).exit_code == 1
    assert _report([(Hop.CLIENT, Status.ERROR)]).exit_code == 3


def test_table_lists_the_chain_and_what_to_do_about_the_first_failure():
    text = render_table(_report([(Hop.CLIENT, Status.PASS), (Hop.DNS, Status.FAIL)]))
    lines = text.splitlines()
    assert lines[0].startswith("k8sreach doctor mysql-read.default")
    header = next(line for line in lines if line.startswith("HOP"))
    assert header.split() == ["HOP", "ADDRESS", "CHECK", "STATUS", "DETAIL"]
    assert "First failure: c1 (dns): summary 1" in text
    assert "What to do:\n  fix 1" in text
    assert text.index("c0") < text.index("c1")
