"""The gateway checks' judgements on captured outputs (no gateway needed)."""

from __future__ import annotations

from pathlib import Path

from checks import bgp_peer_established as bgp
from checks import gateway_forwarding as fwd
from checks import kube_proxy_binary as kpb
from checks import kube_proxy_rules as kpr
from k8sreach.parsers.elf import parse_elf_header
from k8sreach.parsers.iptables import forward_accept_rules, forward_policy, parse_iptables_save
from k8sreach.parsers.kube_proxy import classify_version_run
from k8sreach.parsers.sysctl import effective_setting
from k8sreach.result import Status
from k8sreach.routes import parse_ip_json_route

FIX = Path(__file__).resolve().parent.parent / "fixtures"
CIDRS = ["10.244.0.0/16", "10.96.0.0/12"]


def _text(name: str) -> str:
    return (FIX / name).read_text()


def _forwarding(ruleset_fixture: str, live: str = "1", sysctl_files=None, rp=None):
    rs = parse_iptables_save(_text(ruleset_fixture))
    files = (
        sysctl_files
        if sysctl_files is not None
        else [("/etc/sysctl.d/99-k8s.conf", "net.ipv4.ip_forward = 1\n")]
    )
    return fwd.Forwarding(
        live=live,
        persisted=effective_setting(files, fwd.KEY),
        iptables_policy=forward_policy(rs),
        iptables_accepts=forward_accept_rules(rs, CIDRS),
        nft_drops=[],
        rp_filter=rp or {},
        cidrs=CIDRS,
        tool="iptables-nft-save",
        policy_line=fwd._policy_line(rs),
    )


def test_forward_policy_drop_with_nothing_accepting_fails_forwarding():
    finding = fwd.judge(_forwarding("iptables-save-docker-forward-drop.txt"))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "the FORWARD chain's policy is DROP and no rule accepts the cluster ranges"
    )
    assert finding.evidence["forward_policy_line"] == ":FORWARD DROP"
    assert "iptables -I FORWARD -d 10.244.0.0/16 -j ACCEPT" in finding.remediation
    assert "DOCKER-USER" in finding.remediation


def test_calico_policy_mark_accept_under_drop_policy_only_warns():
    lines = _text("iptables-save-calico-forward.txt").replace(":FORWARD ACCEPT", ":FORWARD DROP")
    rs_text = "\n".join(x for x in lines.splitlines() if "GATEWAY-ALLOW" not in x) + "\n"
    rs = parse_iptables_save(rs_text)
    f = _forwarding("iptables-save-kube-proxy.txt")
    f.iptables_policy, f.iptables_accepts = forward_policy(rs), forward_accept_rules(rs, CIDRS)
    finding = fwd.judge(f)
    assert finding.status is Status.WARN
    assert (
        finding.summary == "the FORWARD chain's policy is DROP; only conditional rules accept (1)"
    )


def test_ip_forward_zero_fails_with_the_live_and_persisted_values():
    finding = fwd.judge(_forwarding("iptables-save-kube-proxy.txt", live="0"))
    assert finding.status is Status.FAIL
    assert finding.summary == "net.ipv4.ip_forward is 0: the gateway does not forward at all"
    assert finding.evidence["ip_forward_live"] == "0"
    assert finding.evidence["ip_forward_persisted"] == "1"
    assert "sysctl -w net.ipv4.ip_forward=1" in finding.remediation


def test_persisted_zero_in_a_later_file_warns_naming_that_file():
    files = [
        ("/etc/sysctl.d/10-k8s.conf", "net.ipv4.ip_forward = 1\n"),
        ("/etc/sysctl.d/99-hardening.conf", "# keep routers off\nnet.ipv4.ip_forward=0\n"),
    ]
    finding = fwd.judge(_forwarding("iptables-save-kube-proxy.txt", sysctl_files=files))
    assert finding.status is Status.WARN
    assert "/etc/sysctl.d/99-hardening.conf line 2 sets it to 0" in finding.summary
    assert finding.evidence["persisted_in"] == "/etc/sysctl.d/99-hardening.conf:2"
    assert [s["file"] for s in finding.evidence["persisted_settings"]] == [
        "/etc/sysctl.d/10-k8s.conf",
        "/etc/sysctl.d/99-hardening.conf",
    ]
    assert "edit /etc/sysctl.d/99-hardening.conf line 2" in finding.remediation


def test_sysctl_conf_is_read_after_sysctl_d():
    files = [
        ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
        ("/etc/sysctl.d/99-k8s.conf", "net.ipv4.ip_forward = 1\n"),
    ]
    finding = fwd.judge(_forwarding("iptables-save-kube-proxy.txt", sysctl_files=files))
    assert finding.evidence["persisted_in"] == "/etc/sysctl.conf:1"


def test_strict_rp_filter_warns_with_the_interface():
    rp = {"eth1": {"all": 0, "iface": 1, "effective": 1, "meaning": "strict"}}
    finding = fwd.judge(_forwarding("iptables-save-kube-proxy.txt", rp=rp))
    assert finding.status is Status.WARN
    assert "rp_filter=1) on eth1" in finding.summary
    assert "net.ipv4.conf.eth1.rp_filter=2" in finding.remediation


def test_healthy_forwarding_passes():
    finding = fwd.judge(_forwarding("iptables-save-kube-proxy.txt"))
    assert finding.status is Status.PASS
    assert finding.summary.startswith("ip_forward=1 (persisted in /etc/sysctl.d/99-k8s.conf)")


def test_rules_dnat_to_endpoints_pass_and_list_them():
    rs = parse_iptables_save(_text("iptables-save-kube-proxy.txt"))
    from k8sreach.parsers.iptables import service_rules

    finding = kpr.judge(
        service_rules(rs, "10.96.86.83", 3306),
        None,
        "10.96.86.83",
        3306,
        "iptables",
        "mysql-read -n default",
    )
    assert finding.status is Status.PASS
    assert finding.facts["endpoints"] == finding.evidence["endpoints"]
    assert finding.evidence["service"] == "default/mysql-read:mysql"


def test_rules_reject_for_no_endpoints_fails():
    rs = parse_iptables_save(_text("iptables-save-kube-proxy.txt"))
    from k8sreach.parsers.iptables import service_rules

    finding = kpr.judge(
        service_rules(rs, "10.96.12.34", 3306),
        None,
        "10.96.12.34",
        3306,
        "iptables",
        "mysql -n default",
    )
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "kube-proxy rejects 10.96.12.34:3306: the Service has no endpoints (default/mysql:mysql)"
    )


def test_no_rule_at_all_fails_as_not_syncing():
    rs = parse_iptables_save(_text("iptables-save-kube-proxy.txt"))
    from k8sreach.parsers.iptables import service_rules

    finding = kpr.judge(
        service_rules(rs, "10.96.99.99", 80), None, "10.96.99.99", 80, "iptables", "web -n default"
    )
    assert finding.status is Status.FAIL
    assert "kube-proxy is not syncing" in finding.summary


def test_calicoctl_global_peer_stuck_idle_fails_with_its_cause():
    peers = bgp.peers_from_calicoctl(_text("calicoctl-node-status.txt"))
    finding = bgp.judge(peers, None, [], [], "calicoctl node status")
    assert finding.status is Status.FAIL
    assert finding.summary.startswith("BGP peer 10.20.2.71 (global) is start/Idle:")
    stuck = [p for p in finding.evidence["peers"] if p.get("cause")]
    assert [(p["address"], p["type"]) for p in stuck] == [("10.20.2.71", "global")]


def test_bird_peer_after_administrative_shutdown_names_the_cause():
    peers = bgp.peers_from_bird(_text("bird2-show-protocols-peer-stopped.txt"))
    finding = bgp.judge(peers, None, [], [], "birdc")
    assert finding.status is Status.FAIL
    assert "Active Received: Administrative shutdown" in finding.summary
    assert "the peer shut the session down" in finding.summary


def test_established_without_learned_route_fails():
    peers = bgp.peers_from_bird(_text("bird2-show-protocols-all-node1.txt"))
    routes = parse_ip_json_route(_text("ip-j-route-gateway.json"))
    finding = bgp.judge(peers, routes, ["10.245.0.9"], ["10.244.0.0/16"], "birdc")
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "the BGP peer is Established, but the gateway has no BGP-learned route for 10.245.0.9"
    )


def test_established_with_learned_route_passes():
    peers = bgp.peers_from_bird(_text("bird2-show-protocols-all-node1.txt"))
    routes = parse_ip_json_route(_text("ip-j-route-gateway.json"))
    finding = bgp.judge(peers, routes, ["10.244.1.10"], ["10.244.0.0/16"], "birdc")
    assert finding.status is Status.PASS
    assert finding.evidence["learned_routes"] == {"10.244.1.10": "10.244.1.0/26 via 10.77.0.2"}


def _binary(**kw):
    base = dict(
        path="/usr/local/bin/kube-proxy",
        found_by="--kube-proxy-path",
        file_type="regular file",
        mode="755",
        size=1000,
        elf=parse_elf_header((FIX / "elf-header-x86_64-pie.bin").read_bytes()),
        head=b"\x7fELF",
        machine="x86_64",
        sha256="a" * 64,
        version=classify_version_run(0, "Kubernetes v1.29.3\n", ""),
        expected_sha256="a" * 64,
        expected_from="--kube-proxy-sha256",
    )
    base.update(kw)
    return kpb.Binary(**base)


def test_sound_binary_passes_with_version():
    finding = kpb.judge(_binary())
    assert finding.status is Status.PASS
    assert finding.summary == (
        "kube-proxy v1.29.3 at /usr/local/bin/kube-proxy, sha256 matches --kube-proxy-sha256"
    )


def test_segfault_without_go_trace_is_corruption():
    run = classify_version_run(139, "", "bash: line 1: 42 Segmentation fault\n")
    finding = kpb.judge(
        _binary(version=run, expected_sha256=None, expected_from=None), reference="root@node1"
    )
    assert finding.status is Status.FAIL
    assert "the binary is corrupt" in finding.summary
    assert "scp root@node1:/usr/local/bin/kube-proxy /tmp/kube-proxy.new" in finding.remediation


def test_checksum_mismatch_is_corruption_with_both_sums():
    finding = kpb.judge(_binary(sha256="b" * 64))
    assert finding.status is Status.FAIL
    assert finding.summary.startswith("/usr/local/bin/kube-proxy is corrupt: sha256 bbbbbbbbbbbb")
    assert f"# must print {'a' * 64}" in finding.remediation


def test_go_panic_is_a_crash_of_a_sound_binary_not_corruption():
    trace = (
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]\n\n"
        "goroutine 1 [running]:\nmain.main()\n"
    )
    finding = kpb.judge(_binary(version=classify_version_run(2, "", trace)))
    assert finding.status is Status.FAIL
    assert "a crash of a sound binary (its checksum matches), not corruption" in finding.summary
    assert "not a bad copy" in finding.remediation


def test_html_saved_as_the_binary_is_not_elf():
    finding = kpb.judge(_binary(elf=None, head=b"<!DOCTYPE html><html>", version=None))
    assert finding.status is Status.FAIL
    assert "is not an ELF program (it starts with '<!DOCTYPE html><')" in finding.summary


def test_binary_for_another_architecture_fails():
    finding = kpb.judge(_binary(machine="aarch64"))
    assert finding.summary == (
        "/usr/local/bin/kube-proxy is built for x86_64, but the gateway is aarch64"
    )


def test_expected_checksum_that_could_not_be_computed_warns_instead_of_passing():
    finding = kpb.judge(_binary(sha256=None, sha256_problem="sha256sum timed out after 2 s"))
    assert finding.status is Status.WARN
    assert finding.summary == (
        "sha256 of /usr/local/bin/kube-proxy could not be computed (sha256sum timed out after "
        "2 s): checksum not verified"
    )
    assert finding.evidence["sha256"] is None
    assert f"sha256sum /usr/local/bin/kube-proxy   # must print {'a' * 64}" in (finding.remediation)


def test_go_panic_without_a_computed_checksum_does_not_claim_it_matches():
    trace = "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"
    finding = kpb.judge(_binary(sha256=None, version=classify_version_run(2, "", trace)))
    assert "a crash of a sound binary (it is a valid ELF program), not corruption" in (
        finding.summary
    )


def test_unusable_reference_warns_naming_the_problem():
    finding = kpb.judge(
        _binary(
            expected_sha256=None,
            expected_from=None,
            reference_problem="sha256sum of /usr/local/bin/kube-proxy on node1 failed: "
            "sha256sum: /usr/local/bin/kube-proxy: No such file or directory",
        ),
        reference="node1",
    )
    assert finding.status is Status.WARN
    assert finding.summary == (
        "kube-proxy v1.29.3 at /usr/local/bin/kube-proxy, x86_64 ELF, but the checksum was not "
        "compared: sha256sum of /usr/local/bin/kube-proxy on node1 failed: sha256sum: "
        "/usr/local/bin/kube-proxy: No such file or directory"
    )


def test_elf_not_run_for_an_unknown_architecture_warns():
    finding = kpb.judge(
        _binary(
            machine=None,
            version=None,
            not_run="the gateway's architecture is unknown: uname -m failed",
        )
    )
    assert finding.status is Status.WARN
    assert finding.summary == (
        "/usr/local/bin/kube-proxy (x86_64 ELF) was not run (the gateway's architecture is "
        "unknown: uname -m failed); its state is unknown"
    )
