"""Smoke tests of the network lab itself: healthy paths, each fault's raw effect, teardown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from k8sreach.lab import FAULTS, Lab, LabError, leftovers

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="the lab needs root and iproute2",
    ),
]

# Prints "banner <text>" or the exception's name and errno: what a TCP client sees.
_CONNECT = textwrap.dedent(
    """
    import socket, sys
    sock = socket.socket()
    sock.settimeout(float(sys.argv[3]))
    try:
        sock.connect((sys.argv[1], int(sys.argv[2])))
        print("banner", sock.recv(200).decode().strip())
    except OSError as exc:
        print(type(exc).__name__, exc.errno)
    """
)

# Prints the rcode and A records, or what went wrong: "timeout" (dnspython, unconnected
# socket) or "refused" (a connected UDP socket, which sees the ICMP port unreachable).
_QUERY = textwrap.dedent(
    """
    import socket, sys
    import dns.exception, dns.message, dns.query, dns.rcode
    server, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    query = dns.message.make_query(name, "A")
    try:
        if mode == "connected":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1.0)
            sock.connect((server, 53))
            sock.send(query.to_wire())
            reply = dns.message.from_wire(sock.recv(4096))
        else:
            reply = dns.query.udp(query, server, timeout=1.0)
    except (dns.exception.Timeout, TimeoutError):
        print("timeout")
    except ConnectionRefusedError:
        print("refused")
    else:
        addrs = sorted(str(a) for rrset in reply.answer for a in rrset)
        print(dns.rcode.to_text(reply.rcode()), *addrs)
    """
)


@pytest.fixture(scope="module")
def lab():
    """Build one lab for the module's tests."""
    with Lab() as built:
        yield built


def _connect(lab: Lab, ip: str | None = None, port: int | None = None, timeout=1.0) -> str:
    """Return what a TCP connect from the client to ip:port (the ClusterIP) sees."""
    argv = [sys.executable, "-c", _CONNECT, ip or lab.service_ip, str(port or lab.service_port)]
    return lab.run("client", [*argv, str(timeout)], timeout=15).stdout.strip()


def _dns(lab: Lab, name: str | None = None, mode: str = "dnspython") -> str:
    """Return what a DNS query from the client to the DNS proxy sees."""
    argv = [sys.executable, "-c", _QUERY, lab.dns_proxy_ip, name or lab.service_fqdn, mode]
    return lab.run("client", argv, timeout=15).stdout.strip()


def _ssh(lab: Lab, command: str, dest: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command over SSH from the client (1 s connect timeout)."""
    argv = lab.ssh_argv(dest, [command])
    argv[1:1] = ["-o", "ConnectTimeout=1"]
    return lab.run("client", argv, timeout=20)


def _gateway_bgp(lab: Lab) -> str:
    """Return the gateway's BIRD line for its peer, whitespace collapsed."""
    out = lab.birdc("gateway", "show", "protocols", lab.gateway_bgp_protocol).stdout
    line = next(x for x in out.splitlines() if x.startswith(lab.gateway_bgp_protocol))
    return " ".join(line.split())


def _gateway_has_pod_route(lab: Lab) -> bool:
    """Return whether the gateway's kernel has the BGP route for the pod block."""
    out = lab.run("gateway", ["ip", "route", "show", lab.pod_block, "proto", "bird"]).stdout
    return bool(out.strip())


BANNER = f"banner {Lab.mysql_banner}"


def test_clusterip_connect_from_client_gets_the_pod_banner(lab):
    assert _connect(lab) == BANNER


def test_dns_proxy_answers_clusterip_and_headless_records(lab):
    assert _dns(lab) == "NOERROR 10.96.86.83"
    assert _dns(lab, lab.headless_fqdn) == "NOERROR 10.244.1.10"
    assert _dns(lab, "nosuch.default.svc.cluster.local") == "NXDOMAIN"
    assert _dns(lab, "example.com") == "REFUSED"


def test_client_resolves_short_name_through_its_own_resolv_conf(lab):
    out = lab.run("client", ["getent", "hosts", "mysql-read"]).stdout.split()
    assert out == ["10.96.86.83", lab.service_fqdn]
    assert not Path("/etc/resolv.conf").read_text().startswith(f"nameserver {lab.dns_proxy_ip}")


def test_gateway_learns_pod_block_over_bgp(lab):
    assert _gateway_has_pod_route(lab)
    line = _gateway_bgp(lab).split()
    assert (line[3], line[-1]) == ("up", "Established")


def test_ssh_sees_gateway_files_that_the_machine_does_not_have(lab):
    proc = _ssh(
        lab,
        "hostname; cat /etc/sysctl.d/99-k8sreach-gateway.conf; kube-proxy --version; "
        "sha256sum /usr/local/bin/kube-proxy; birdc show protocols | grep -c Established; "
        "grep ExecStart /etc/systemd/system/kube-proxy.service",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "gateway"
    assert lines[2] == "net.ipv4.ip_forward = 1"
    assert lines[3] == "Kubernetes v1.29.3"
    assert lines[4] == f"{lab.kube_proxy_sha256}  {lab.kube_proxy_path}"
    assert lines[5] == "1"
    assert lines[6].startswith("ExecStart=/usr/local/bin/kube-proxy --config=")
    assert not Path("/etc/sysctl.d/99-k8sreach-gateway.conf").exists()
    assert Path(lab.gateway_bird_socket).is_socket()


def test_reference_node_runs_the_good_kube_proxy(lab):
    proc = _ssh(
        lab,
        "hostname; kube-proxy --version; sha256sum /usr/local/bin/kube-proxy",
        lab.reference_ssh_dest,
    )
    assert proc.stdout.splitlines() == [
        "node",
        "Kubernetes v1.29.3",
        f"{lab.kube_proxy_sha256}  /usr/local/bin/kube-proxy",
    ]


def test_fault_names_are_the_documented_ones():
    assert sorted(FAULTS) == sorted(
        [
            "client-route-removed", "client-route-wrong-hop", "dns-proxy-stopped",
            "dns-upstream-broken", "kube-dns-stale", "no-endpoints-reject", "dnat-removed",
            "pod-listener-stopped", "ip-forward-off", "ip-forward-not-persisted",
            "forward-policy-drop", "rp-filter-strict", "bgp-peer-stopped", "bgp-bad-peer-as",
            "pod-route-not-exported", "kube-proxy-segfault", "kube-proxy-panic",
            "kube-proxy-checksum-mismatch", "ssh-down", "ssh-blackhole", "gateway-drop-all",
        ]
    )  # fmt: skip


# What each fault does to the client's view of mysql-read's ClusterIP.
CONNECT_SYMPTOM = {
    "client-route-removed": "TimeoutError None",
    "client-route-wrong-hop": "OSError 113",
    "no-endpoints-reject": "ConnectionRefusedError 111",
    "dnat-removed": "TimeoutError None",
    "pod-listener-stopped": "ConnectionRefusedError 111",
    "ip-forward-off": "TimeoutError None",
    "forward-policy-drop": "TimeoutError None",
    "gateway-drop-all": "TimeoutError None",
    "ip-forward-not-persisted": BANNER,
    "rp-filter-strict": BANNER,
}


@pytest.mark.parametrize("fault", sorted(CONNECT_SYMPTOM))
def test_fault_shows_its_connect_symptom_and_heal_restores(lab, fault):
    lab.inject(fault)
    try:
        assert lab.faults() == [fault]
        timeout = 4.0 if fault == "client-route-wrong-hop" else 1.0
        assert _connect(lab, timeout=timeout) == CONNECT_SYMPTOM[fault]
        if fault == "gateway-drop-all":
            assert _dns(lab) == "NOERROR 10.96.86.83"
    finally:
        lab.heal()
    assert lab.faults() == []
    assert _connect(lab) == BANNER


@pytest.mark.parametrize(
    ("fault", "mode", "symptom"),
    [
        ("dns-proxy-stopped", "connected", "refused"),
        ("dns-proxy-stopped", "dnspython", "timeout"),
        ("dns-upstream-broken", "dnspython", "timeout"),
        ("kube-dns-stale", "dnspython", "NOERROR 10.96.86.99"),
    ],
)
def test_dns_fault_shows_its_symptom_and_heal_restores(lab, fault, mode, symptom):
    lab.inject(fault)
    try:
        assert _dns(lab, mode=mode) == symptom
        assert _connect(lab) == BANNER
    finally:
        lab.heal()
    assert _dns(lab, mode=mode) == "NOERROR 10.96.86.83"


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        ("bgp-peer-stopped", ["start", "Active", "Received: Administrative shutdown"]),
        ("bgp-bad-peer-as", ["start", "Idle", "BGP Error: Bad peer AS"]),
        ("pod-route-not-exported", ["up", "Established"]),
    ],
)
def test_bgp_fault_shows_peer_state_without_route(lab, fault, state):
    lab.inject(fault)
    try:
        assert not _gateway_has_pod_route(lab)
        assert _connect(lab) == "TimeoutError None"
        name, proto, table, status, _since, *info = _gateway_bgp(lab).split()
        assert [name, proto, table, status] == ["node1", "BGP", "---", state[0]]
        assert " ".join(info) == " ".join(state[1:])
    finally:
        lab.heal()
    assert _gateway_has_pod_route(lab)
    assert _gateway_bgp(lab).endswith("Established")
    assert _connect(lab) == BANNER


def test_gateway_sysctl_faults_show_live_and_persisted_values(lab):
    show = "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.rp_filter; tail -1 /etc/sysctl.conf"
    lab.inject("ip-forward-not-persisted")
    try:
        assert _ssh(lab, show).stdout.splitlines() == ["1", "0", "net.ipv4.ip_forward = 0"]
    finally:
        lab.heal()
    lab.inject("rp-filter-strict")
    try:
        assert _ssh(lab, show).stdout.splitlines()[:2] == ["1", "1"]
    finally:
        lab.heal()
    assert _ssh(lab, show).stdout.splitlines()[:2] == ["1", "0"]


def test_forward_policy_drop_shows_in_the_gateway_rules(lab):
    lab.inject("forward-policy-drop")
    try:
        out = lab.run("gateway", ["iptables", "-S", "FORWARD"]).stdout.splitlines()
        assert out[0] == "-P FORWARD DROP"
        assert lab.run("gateway", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout == "1\n"
    finally:
        lab.heal()
    assert lab.run("gateway", ["iptables", "-S", "FORWARD"]).stdout.startswith("-P FORWARD ACCEPT")


def test_no_endpoints_fault_writes_kube_proxys_reject_rule(lab):
    lab.inject("no-endpoints-reject")
    try:
        rules = lab.run("gateway", ["iptables-save"]).stdout
        assert (
            '-A KUBE-SERVICES -d 10.96.86.83/32 -p tcp -m comment --comment "default/mysql-read:'
            'mysql has no endpoints" -m tcp --dport 3306 -j REJECT --reject-with '
            "icmp-port-unreachable"
        ) in rules
        assert lab.service_chain not in rules
    finally:
        lab.heal()
    assert f"--dport 3306 -j {lab.service_chain}" in lab.run("gateway", ["iptables-save"]).stdout


@pytest.mark.parametrize(
    ("fault", "exit_line", "stderr_has"),
    [
        ("kube-proxy-segfault", "rc=139", "Segmentation fault"),
        ("kube-proxy-panic", "rc=2", "goroutine 1 [running]:"),
        ("kube-proxy-checksum-mismatch", "rc=0", ""),
    ],
)
def test_kube_proxy_faults_change_the_binary_ssh_sees(lab, fault, exit_line, stderr_has):
    command = "kube-proxy --version; echo rc=$?; sha256sum /usr/local/bin/kube-proxy"
    lab.inject(fault)
    try:
        proc = _ssh(lab, command)
        lines = proc.stdout.splitlines()
        assert exit_line in lines
        assert stderr_has in proc.stderr
        assert not lines[-1].startswith(lab.kube_proxy_sha256)
        if fault == "kube-proxy-checksum-mismatch":
            assert lines[0] == "Kubernetes v1.29.3"
        if fault == "kube-proxy-panic":
            assert proc.stderr.startswith(
                "panic: runtime error: invalid memory address or nil pointer dereference\n"
                "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x"
            )
    finally:
        lab.heal()
    assert _ssh(lab, command).stdout.splitlines()[:2] == ["Kubernetes v1.29.3", "rc=0"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("ssh-down", "Connection refused"),
        ("ssh-blackhole", "Connection timed out"),
        ("gateway-drop-all", "Connection timed out"),
    ],
)
def test_ssh_faults_refuse_or_hang(lab, fault, error):
    lab.inject(fault)
    try:
        proc = _ssh(lab, "true")
        assert proc.returncode == 255
        assert proc.stderr.strip() == f"ssh: connect to host 192.168.77.1 port 22: {error}"
    finally:
        lab.heal()
    assert _ssh(lab, "true").returncode == 0


def test_inject_while_a_fault_is_active_is_refused(lab):
    lab.inject("dnat-removed")
    try:
        with pytest.raises(LabError, match="'dnat-removed' is active"):
            lab.inject("ip-forward-off")
    finally:
        lab.heal()
    with pytest.raises(LabError, match="unknown fault 'no-such-fault'"):
        lab.inject("no-such-fault")


def _lab_pids(names: list[str]) -> list[int]:
    """Return the pids inside the given namespaces."""
    pids = []
    for name in names:
        out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        pids += [int(p) for p in out.stdout.split()]
    return pids


def _alive(pid: int) -> bool:
    """Return whether a process exists (and is not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_teardown_leaves_no_namespace_process_or_file():
    with Lab() as lab:
        names = list(lab.ns.values())
        assert set(names) <= set(leftovers())
        pids = _lab_pids(names)
        assert len(pids) >= 9  # 2 anchors, 2 sshd, 2 BIRD, 2 dnsmasq, the listener
        lab_dir, resolv = lab.dir, Path(lab.client_resolv_conf)
    assert not set(names) & set(leftovers())
    assert not [p for p in pids if _alive(p)]
    assert not lab_dir.exists()
    assert not resolv.parent.exists()


def test_sigterm_tears_the_lab_down():
    script = textwrap.dedent(
        """
        import sys, time
        from k8sreach.lab import Lab
        lab = Lab()
        lab.build()
        print(" ".join(lab.ns.values()), flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        names = proc.stdout.readline().split()
        assert len(names) == 8 and set(names) <= set(leftovers())
        pids = _lab_pids(names)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while [p for p in pids if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(names) & set(leftovers())
    assert not [p for p in pids if _alive(p)]


def test_failed_build_raises_lab_error_and_leaves_nothing(monkeypatch):
    from k8sreach.lab import _daemons

    started = []
    original = _daemons.start_all

    def start_then_fail(lab):
        original(lab)
        started.extend(_lab_pids(list(lab.ns.values())))
        raise RuntimeError("injected by the test")

    monkeypatch.setattr(_daemons, "start_all", start_then_fail)
    lab = Lab()
    with pytest.raises(LabError, match="lab build failed while starting daemons: RuntimeError"):
        lab.build()
    assert len(started) >= 9
    assert not set(lab.ns.values()) & set(leftovers())
    assert not [p for p in started if _alive(p)]
    assert not lab.dir.exists()
