"""End-to-end: the client-side chain on the lab (route, DNS, TCP), without gateway access."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab


def test_healthy_path_passes_every_client_check(lab):
    run = doctor(lab, ssh=False)
    assert run.code == 0, run.stderr
    assert run.doc["reachable"] is True
    assert run.doc["first_failure"] is None
    assert run.statuses()["route-present"] == "pass"
    assert run.statuses()["dns-resolves"] == "pass"
    assert run.statuses()["tcp-connect"] == "pass"
    dns = run.check("dns-resolves")["evidence"]
    assert dns["server"] == f"{lab.dns_proxy_ip}:53"
    assert dns["rcode"] == "NOERROR"
    assert dns["answers"] == [lab.service_ip]
    route = run.check("route-present")["evidence"]
    assert route["checked"][0]["matched"]["next_hop"] == lab.gateway_ip
    tcp = run.check("tcp-connect")["evidence"]
    assert (tcp["address"], tcp["port"], tcp["outcome"]) == (
        lab.service_ip,
        lab.service_port,
        "connected",
    )


def test_removed_client_route_fails_route_present_with_the_default_route_as_evidence(lab):
    with fault(lab, "client-route-removed"):
        run = doctor(lab, ssh=False)
    assert run.code == 1
    assert run.doc["first_failure"] == "route-present"
    assert run.doc["reachable"] is False
    route = run.check("route-present")
    assert route["evidence"]["failure"] == "default-only"
    assert route["evidence"]["checked"][0]["matched"]["destination"] == "0.0.0.0/0"
    assert f"sudo ip route replace {lab.service_cidr} via {lab.gateway_ip}" in route["remediation"]
    assert run.statuses()["tcp-connect"] == "fail"


def test_route_via_another_next_hop_is_its_own_failure(lab):
    with fault(lab, "client-route-wrong-hop"):
        run = doctor(lab, ssh=False)
    route = run.check("route-present")
    assert route["status"] == "fail"
    assert route["evidence"]["failure"] == "other-next-hop"
    assert f"not via the gateway {lab.gateway_ip}" in route["summary"]


def test_stopped_dns_proxy_fails_dns_as_nothing_listening(lab):
    with fault(lab, "dns-proxy-stopped"):
        run = doctor(lab, ssh=False)
    assert run.code == 1
    assert run.doc["first_failure"] == "dns-resolves"
    dns = run.check("dns-resolves")
    assert dns["summary"] == f"nothing listens on {lab.dns_proxy_ip}:53 (ICMP port unreachable)"
    assert dns["evidence"]["error"] == "ECONNREFUSED"
    assert run.check("tcp-connect")["status"] == "skip"
    assert run.check("tcp-connect")["caused_by"] == "dns-resolves"


def test_name_that_does_not_exist_is_nxdomain(lab):
    run = doctor(lab, ssh=False, target="no-such-svc.default")
    assert run.code == 1
    assert run.doc["first_failure"] == "dns-resolves"
    dns = run.check("dns-resolves")
    assert dns["evidence"]["rcode"] == "NXDOMAIN"
    assert dns["summary"].startswith("NXDOMAIN")
    assert "no-such-svc.default.svc.cluster.local." in dns["summary"]
    assert "kubectl get service no-such-svc -n default" in dns["remediation"]
    assert run.check("tcp-connect")["status"] == "skip"


def test_service_without_endpoints_is_rejected_at_once_by_the_gateway(lab):
    with fault(lab, "no-endpoints-reject"):
        run = doctor(lab, ssh=False)
    assert run.code == 1
    assert run.doc["first_failure"] == "tcp-connect"
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "rejected"
    assert tcp["evidence"]["errno"] == "ECONNREFUSED"
    assert tcp["evidence"]["answered_by"] == lab.gateway_ip
    assert tcp["evidence"]["answered_by_hop"] == "gateway"
    assert tcp["evidence"]["icmp"] == {"type": 3, "code": 3, "meaning": "port unreachable"}
    assert tcp["evidence"]["latency_ms"] < 500
    assert tcp["summary"] == (
        f"connection to {lab.service_ip}:{lab.service_port} rejected on the way by "
        f"{lab.gateway_ip} (gateway): ICMP port unreachable"
    )
    assert "Service without ready endpoints" in tcp["remediation"]
    assert run.statuses()["dns-resolves"] == "pass"


def test_stopped_pod_listener_is_a_reset_by_the_target(lab):
    with fault(lab, "pod-listener-stopped"):
        run = doctor(lab, ssh=False)
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "reset"
    assert tcp["evidence"]["answered_by_hop"] == "service"
    assert "icmp" not in tcp["evidence"]
    assert "nothing listens on the target port" in tcp["summary"]


def test_missing_dnat_rule_times_out(lab):
    with fault(lab, "dnat-removed"):
        run = doctor(lab, "--timeout", "1", ssh=False)
    assert run.code == 1
    assert run.doc["first_failure"] == "tcp-connect"
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "timeout"
    assert tcp["summary"].startswith(
        f"connection to {lab.service_ip}:{lab.service_port} timed out after 1 s (no answer at all)"
    )
    assert run.seconds < 1 + 1.5


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("Mysql-Read.default", "the service name 'Mysql-Read' has capital letters"),
        ("mysql_read.default", "the service name 'mysql_read' is not a valid DNS-1035 label"),
        ("mysql-read.default:99999", "the port 99999 is out of range"),
        ("a.b.c", "is not NAME, NAME.NAMESPACE or NAME.NAMESPACE.svc.cluster.local"),
    ],
)
def test_bad_targets_exit_2_with_one_clear_line(lab, target, message):
    run = doctor(lab, ssh=False, target=target, port=False, output_json=False)
    assert run.code == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert "Traceback" not in run.stderr
