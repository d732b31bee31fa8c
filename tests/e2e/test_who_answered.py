"""End-to-end: who answered a connection, and where silent packets stop (issue: root cause)."""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab


@contextlib.contextmanager
def gateway_route(lab, *route: str):
    """A route added in the gateway's namespace for one test, removed again."""
    lab.run("gateway", ["ip", "route", "add", *route], timeout=10).check_returncode()
    try:
        yield
    finally:
        lab.run("gateway", ["ip", "route", "del", *route], timeout=10)


def test_unreachable_names_the_router_that_said_so(lab):
    # The headless name resolves to the pod itself, so nothing NATs the answer's source.
    with gateway_route(lab, "unreachable", f"{lab.pod_ip}/32"):
        run = doctor(lab, "--timeout", "1", ssh=False, target="mysql.default")
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "unreachable"
    assert tcp["evidence"]["answered_by"] == lab.gateway_ip
    assert tcp["evidence"]["answered_by_hop"] == "gateway"
    assert tcp["evidence"]["icmp"]["meaning"] == "host unreachable"
    assert tcp["summary"] == (
        f"host unreachable for {lab.pod_ip}:{lab.service_port}, said by {lab.gateway_ip} (gateway)"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="path localisation needs root")
def test_forwarding_drop_is_localised_to_the_gateway(lab):
    with fault(lab, "gateway-drop-all"):
        run = doctor(lab, "--timeout", "1")
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "timeout"
    assert tcp["evidence"]["stopped_at_hop"] == "gateway"
    assert tcp["evidence"]["path"][0]["hop"] == "gateway"
    assert "packets reach the gateway" in tcp["summary"]
    assert "go no further" in tcp["summary"]
    # No SSH either (the gateway drops it), so the localisation is the diagnosis.
    assert run.check("gateway-forwarding")["status"] == "skip"
    assert run.doc["first_failure"] == "tcp-connect"


@pytest.mark.skipif(os.geteuid() != 0, reason="path localisation needs root")
def test_policy_drop_localised_and_blamed_on_forwarding(lab):
    with fault(lab, "forward-policy-drop"):
        run = doctor(lab, "--timeout", "1")
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["stopped_at_hop"] == "gateway"
    assert tcp["caused_by"] == "gateway-forwarding"
    assert run.doc["first_failure"] == "gateway-forwarding"


def test_healthy_connection_has_no_path_trace(lab):
    run = doctor(lab, ssh=False)
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "connected"
    assert "path" not in tcp["evidence"]
