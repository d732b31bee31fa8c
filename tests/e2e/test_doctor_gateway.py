"""End-to-end: the gateway checks over SSH on the lab, one injected fault at a time."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab

GATEWAY_CHECKS = (
    "gateway-forwarding",
    "bgp-peer-established",
    "kube-proxy-binary",
    "kube-proxy-rules",
)


def test_healthy_full_chain_passes_over_ssh(lab):
    run = doctor(lab)
    assert run.code == 0, run.stdout + run.stderr
    network = {c["id"]: c["status"] for c in run.doc["checks"] if c["hop"] != "cluster"}
    assert set(network.values()) == {"pass"}, network
    hops = [c["hop"] for c in run.doc["checks"]]
    order = ["client", "dns", "gateway", "cluster", "service"]
    assert hops == sorted(hops, key=order.index), "checks are in path order"
    assert [c["id"] for c in run.doc["checks"] if c["hop"] == "gateway"] == list(GATEWAY_CHECKS)
    fwd = run.check("gateway-forwarding")["evidence"]
    assert (fwd["ip_forward_live"], fwd["ip_forward_persisted"], fwd["forward_policy"]) == (
        "1",
        "1",
        "ACCEPT",
    )
    bgp = run.check("bgp-peer-established")["evidence"]
    assert [(p["address"], p["info"]) for p in bgp["peers"]] == [(lab.node_ip, "Established")]
    assert bgp["learned_routes"] == {lab.pod_ip: f"10.244.1.0/24 via {lab.node_ip}"}
    binary = run.check("kube-proxy-binary")["evidence"]
    assert binary["sha256"] == lab.kube_proxy_sha256
    assert binary["version_run"]["version"] == "v1.29.3"
    rules = run.check("kube-proxy-rules")["evidence"]
    assert rules["endpoints"] == [f"{lab.pod_ip}:{lab.service_port}"]


def test_ip_forward_off_fails_forwarding_and_explains_the_timeout(lab):
    with fault(lab, "ip-forward-off"):
        run = doctor(lab, "--timeout", "1")
    assert run.code == 1
    assert run.doc["first_failure"] == "gateway-forwarding"
    fwd = run.check("gateway-forwarding")
    assert fwd["summary"] == "net.ipv4.ip_forward is 0: the gateway does not forward at all"
    assert fwd["evidence"]["ip_forward_live"] == "0"
    assert "sysctl -w net.ipv4.ip_forward=1" in fwd["remediation"]
    tcp = run.check("tcp-connect")
    assert tcp["evidence"]["outcome"] == "timeout"
    assert tcp["caused_by"] == "gateway-forwarding"


def test_forward_policy_drop_with_forwarding_on_fails_with_the_policy_line(lab):
    with fault(lab, "forward-policy-drop"):
        run = doctor(lab, "--timeout", "1")
    assert run.doc["first_failure"] == "gateway-forwarding"
    fwd = run.check("gateway-forwarding")
    assert fwd["evidence"]["ip_forward_live"] == "1"
    assert fwd["evidence"]["forward_policy_line"] == ":FORWARD DROP"
    assert fwd["summary"].startswith("the FORWARD chain's policy is DROP")
    assert f"iptables -I FORWARD -d {lab.pod_cidr} -j ACCEPT" in fwd["remediation"]


def test_forwarding_not_persisted_warns_and_the_path_still_works(lab):
    with fault(lab, "ip-forward-not-persisted"):
        run = doctor(lab)
    assert run.code == 0
    fwd = run.check("gateway-forwarding")
    assert fwd["status"] == "warn"
    assert fwd["evidence"]["ip_forward_live"] == "1"
    assert fwd["evidence"]["ip_forward_persisted"] == "0"
    assert "forwarding stops at the next reboot" in fwd["summary"]
    assert run.doc["reachable"] is True


def test_stopped_bgp_peer_fails_with_state_and_cause(lab):
    with fault(lab, "bgp-peer-stopped"):
        run = doctor(lab, "--timeout", "1")
    assert run.doc["first_failure"] == "bgp-peer-established"
    bgp = run.check("bgp-peer-established")
    peer = bgp["evidence"]["peers"][0]
    assert peer["address"] == lab.node_ip
    assert peer["info"] != "Established"
    assert "Administrative shutdown" in peer["message"]
    assert "the peer shut the session down" in bgp["summary"]
    assert run.check("tcp-connect")["caused_by"] == "bgp-peer-established"


def test_sessions_up_but_pod_route_not_exported_is_its_own_failure(lab):
    with fault(lab, "pod-route-not-exported"):
        run = doctor(lab, "--timeout", "1")
    bgp = run.check("bgp-peer-established")
    assert bgp["status"] == "fail"
    assert [p["info"] for p in bgp["evidence"]["peers"]] == ["Established"]
    assert bgp["summary"] == (
        f"the BGP peer is Established, but the gateway has no BGP-learned route for {lab.pod_ip}"
    )
    assert run.doc["first_failure"] == "bgp-peer-established"


def test_segfaulting_kube_proxy_is_reported_corrupt(lab):
    with fault(lab, "kube-proxy-segfault"):
        run = doctor(lab)
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert run.doc["first_failure"] == "kube-proxy-binary"
    assert "is corrupt" in binary["summary"]
    assert binary["evidence"]["sha256"] != lab.kube_proxy_sha256
    assert lab.kube_proxy_sha256 in binary["remediation"]


def test_segfault_alone_says_corrupt_without_a_known_checksum(lab):
    with fault(lab, "kube-proxy-segfault"):
        run = doctor(lab, checksum=False)
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert binary["evidence"]["expected_sha256"] is None
    assert binary["evidence"]["version_run"]["kind"] == "segfault"
    assert binary["evidence"]["version_run"]["signal"] == 11
    assert binary["summary"].startswith("kube-proxy --version dies with exit 139")
    assert binary["summary"].endswith("the binary is corrupt")


def test_checksum_mismatch_of_a_working_binary_is_corruption(lab):
    with fault(lab, "kube-proxy-checksum-mismatch"):
        run = doctor(lab)
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert binary["evidence"]["version_run"]["kind"] == "ok"
    assert binary["summary"].startswith("/usr/local/bin/kube-proxy is corrupt: sha256 ")
    assert run.doc["reachable"] is True


def test_go_panic_is_a_crash_not_corruption(lab):
    # No expected checksum: the panic alone must not be read as a corrupt copy.
    with fault(lab, "kube-proxy-panic"):
        run = doctor(lab, checksum=False)
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert binary["evidence"]["version_run"]["kind"] == "go-panic"
    assert "a crash of a sound binary" in binary["summary"]
    assert "not corruption" in binary["summary"]
    assert "corrupt:" not in binary["summary"]


def test_removed_dnat_rule_fails_rules_and_explains_the_timeout(lab):
    with fault(lab, "dnat-removed"):
        run = doctor(lab, "--timeout", "1")
    rules = run.check("kube-proxy-rules")
    assert rules["status"] == "fail"
    assert rules["summary"].startswith(
        f"no kube-proxy rule for {lab.service_ip}:{lab.service_port}"
    )
    assert run.doc["first_failure"] == "kube-proxy-rules"
    assert run.check("tcp-connect")["caused_by"] == "kube-proxy-rules"


def test_no_endpoints_reject_is_named_by_the_rules_check(lab):
    with fault(lab, "no-endpoints-reject"):
        run = doctor(lab)
    rules = run.check("kube-proxy-rules")
    assert rules["status"] == "fail"
    assert "the Service has no endpoints" in rules["summary"]
    assert run.check("tcp-connect")["evidence"]["outcome"] == "rejected"
    assert run.doc["first_failure"] == "kube-proxy-rules"


@pytest.mark.parametrize("name", ["ssh-down", "ssh-blackhole"])
def test_unreachable_ssh_skips_gateway_checks_and_ends_within_its_deadline(lab, name):
    with fault(lab, name):
        run = doctor(lab, "--timeout", "1")
    for check_id in GATEWAY_CHECKS:
        assert run.check(check_id)["status"] == "skip"
        assert run.check(check_id)["summary"].startswith("cannot reach the gateway over SSH")
    assert run.statuses()["route-present"] == "pass"
    assert run.statuses()["dns-resolves"] == "pass"
    assert run.statuses()["tcp-connect"] == "pass"
    assert run.code == 0
    assert run.seconds < 1 * 3 + 1 + 1.5


def test_hostile_path_is_a_file_name_not_a_command(lab):
    marker = f"/tmp/k8sreach-owned-{uuid.uuid4().hex[:8]}"
    run = doctor(lab, "--kube-proxy-path", f"/x; touch {marker}")
    assert not os.path.exists(marker)
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert binary["summary"] == f"no kube-proxy at /x; touch {marker} (--kube-proxy-path)"


def test_script_at_the_kube_proxy_path_is_read_but_never_run_on_the_gateway(lab, tmp_path):
    marker = f"/tmp/k8sreach-ran-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "kube-proxy"  # /tmp is the same directory in the gateway's view
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho Kubernetes v1.29.3\n")
    script.chmod(0o755)
    try:
        run = doctor(lab, "--kube-proxy-path", str(script))
        ran = os.path.exists(marker)
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
    assert not ran, "kube-proxy-binary executed a shell script on the gateway"
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "fail"
    assert binary["summary"] == (
        f"{script} is not an ELF program (it starts with '#!/bin/sh\\ntouch '): the copy is corrupt"
    )
    assert binary["evidence"]["version_run"] is None


def test_reference_node_without_the_file_warns_instead_of_passing(lab):
    missing = f"/usr/local/bin/kube-proxy-{uuid.uuid4().hex[:8]}"
    run = doctor(
        lab, "--kube-proxy-reference", f"{lab.reference_ssh_dest}:{missing}", checksum=False
    )
    binary = run.check("kube-proxy-binary")
    assert binary["status"] == "warn"
    assert binary["summary"] == (
        f"kube-proxy v1.29.3 at /usr/local/bin/kube-proxy, x86_64 ELF, but the checksum was not "
        f"compared: sha256sum of {missing} on {lab.reference_ssh_dest} failed: sha256sum: "
        f"{missing}: No such file or directory"
    )


def test_stale_bird_socket_is_reported_as_bird_not_answering(lab, tmp_path):
    import socket

    path = tmp_path / "bird.ctl"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the socket file stays; nothing listens behind it
    run = doctor(lab, "--bird-socket", str(path))
    bgp = run.check("bgp-peer-established")
    assert bgp["status"] == "fail"
    assert bgp["summary"] == (
        f"birdc -s {path} show protocols all failed: Unable to connect to server control "
        f"socket ({path}): Connection refused"
    )
    assert bgp["evidence"]["socket"] == str(path)


def test_dropped_ssh_port_is_not_blamed_on_sshd(lab):
    with fault(lab, "ssh-blackhole"):
        # ssh's own ConnectTimeout is 2 s here: k8sreach's 1.5 s deadline cuts the attempt
        run = doctor(lab, "--timeout", "1.5")
    summary = run.check("kube-proxy-binary")["summary"]
    assert summary == (
        f"cannot reach the gateway over SSH: ssh {lab.ssh_dest}: no SSH session within 1.5 s: "
        "the SSH port does not answer (packets filtered or dropped on the way); check the "
        "address and port, and that no firewall drops SSH to the gateway, or allow a longer "
        "timeout"
    )
    assert "check sshd" not in summary
