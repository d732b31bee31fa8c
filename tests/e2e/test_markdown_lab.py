"""End-to-end: the Markdown report of a failing lab run carries the lab's real addresses."""

from __future__ import annotations

import pytest

from k8sreach import runbooks
from k8sreach.markdown import render_markdown
from k8sreach.result import CheckResult, Hop, Report, Status
from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab


def _report(doc: dict) -> Report:
    """The Report a `-o json` document describes."""
    results = tuple(
        CheckResult(
            c["id"],
            Hop(c["hop"]),
            Status(c["status"]),
            c["summary"],
            c["evidence"],
            c["remediation"],
            c["duration_ms"],
            c.get("address"),
            c.get("caused_by"),
        )
        for c in doc["checks"]
    )
    return Report(
        doc["target"],
        results,
        doc["reachable"],
        doc["duration_ms"],
        tuple(doc.get("load_errors", ())),
    )


def test_removed_client_route_renders_route_steps_with_the_lab_addresses(lab):
    with fault(lab, "client-route-removed"):
        run = doctor(lab, ssh=False)
    assert run.doc["first_failure"] == "route-present"

    text = render_markdown(_report(run.doc), os_name="linux")

    matched = run.check("route-present")["evidence"]["checked"][0]["matched"]
    assert "### Runbook `route-default-only`" in text
    assert f"sudo ip route replace {lab.service_cidr} via {lab.gateway_ip}" in text
    assert f"DEV={matched['interface']}    # the interface toward {lab.gateway_ip}" in text
    assert f"ip route get {lab.service_ip}    # must say: via {lab.gateway_ip}" in text
    assert runbooks.unfilled(text) == []


def test_forwarding_off_renders_gateway_steps_for_the_lab_gateway(lab):
    with fault(lab, "ip-forward-off"):
        run = doctor(lab)
    assert run.doc["first_failure"] == "gateway-forwarding"

    text = render_markdown(_report(run.doc), os_name="linux")

    assert "### Runbook `forwarding-off`" in text
    assert f"1. **On the gateway {lab.gateway_ip}, as root:** Turn forwarding on now." in text
    assert "sysctl -w net.ipv4.ip_forward=1" in text
    assert runbooks.unfilled(text) == []


def test_doctor_writes_the_markdown_report(lab):
    with fault(lab, "client-route-removed"):
        run = doctor(lab, "-o", "markdown", ssh=False, output_json=False)
    assert run.code == 1, run.stderr
    assert run.stdout.startswith(f"# k8sreach doctor {lab.service}.{lab.namespace}\n")
    assert f"sudo ip route replace {lab.service_cidr} via {lab.gateway_ip}" in run.stdout
    assert runbooks.unfilled(run.stdout) == []
