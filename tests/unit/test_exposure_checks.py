"""nodeport-connect, loadbalancer-connect and an ExternalName Service end to end, run through the
engine against FakeApiServer and a DNS server on loopback. Every address is in 127.0.0.0/8."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from checks.dns_resolves import DnsResolves
from checks.endpoints_ready import EndpointsReady
from checks.loadbalancer_connect import LoadbalancerConnect
from checks.nodeport_connect import NodeportConnect, node_view
from checks.service_exists import ServiceExists
from checks.tcp_connect import TcpConnect
from k8sreach import runner
from k8sreach.config import Endpoint, Settings
from k8sreach.result import Report, Status
from k8sreach.target import parse_target
from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import Backend, FakeApiServer
from tests.dnsfake import LoopbackDns, reply

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
NODE_UP = "127.0.0.50"  # a Ready node whose nodePort answers
NODE_SILENT = "127.0.0.51"  # a Ready node where nothing listens: a TCP reset
NODE_DOWN = "127.0.0.52"  # a NotReady node: not probed
BALANCER = "127.0.0.60"
EXTERNAL_DB = "127.0.0.70"  # where the ExternalName's alias resolves to


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _listen(host: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(16)
    return sock


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    # one port number serves as nodePort, load-balancer port and the external database's port
    for _ in range(20):  # another process may hold the number on one of the addresses
        socks: list[socket.socket] = []
        try:
            socks.append(_listen(NODE_UP))
            port = socks[0].getsockname()[1]
            for host in (BALANCER, "127.0.0.1", EXTERNAL_DB):
                sock = socket.socket()
                socks.append(sock)
                sock.bind((host, port))
                sock.listen(16)
        except OSError:
            for sock in socks:
                sock.close()
            continue
        try:
            yield {"port": port}
        finally:
            for sock in socks:
                sock.close()
        return
    raise RuntimeError("no port number free on all the test addresses")


def _objects(port: int) -> list[dict]:
    web_port = kubeapi.service_port(port, name="http", target_port=8080, node_port=port)
    ready_pod = [Backend("127.0.1.90", pod="web-0", node="node-1")]
    slice_ports = [{"name": "http", "port": 8080}]
    return [
        kubeapi.node("node-1", internal_ip=NODE_UP),
        kubeapi.node("node-2", internal_ip=NODE_SILENT),
        kubeapi.node("node-3", internal_ip=NODE_DOWN, ready=False),
        kubeapi.service(
            "web",
            cluster_ip="127.0.0.91",
            type="NodePort",
            selector={"app": "web"},
            ports=[web_port],
        ),
        kubeapi.endpoint_slice("web", backends=ready_pod, ports=slice_ports),
        kubeapi.service(
            "closed",
            cluster_ip="127.0.0.92",
            type="NodePort",
            selector={"app": "web"},
            ports=[kubeapi.service_port(80, name="http", target_port=8080, node_port=1)],
            external_traffic_policy="Local",
        ),
        kubeapi.endpoint_slice("closed", backends=ready_pod, ports=slice_ports),
        kubeapi.service(
            "front",
            cluster_ip="127.0.0.93",
            type="LoadBalancer",
            selector={"app": "web"},
            ports=[web_port],
            load_balancer_ips=[BALANCER],
        ),
        kubeapi.endpoint_slice("front", backends=ready_pod, ports=slice_ports),
        kubeapi.service(
            "pending",
            cluster_ip="127.0.0.94",
            type="LoadBalancer",
            selector={"app": "web"},
            ports=[web_port],
        ),
        kubeapi.endpoint_slice("pending", backends=ready_pod, ports=slice_ports),
        _with_hostname(
            kubeapi.service(
                "named-lb",
                cluster_ip="127.0.0.95",
                type="LoadBalancer",
                selector={"app": "web"},
                ports=[web_port],
            ),
            "localhost",
        ),
        kubeapi.endpoint_slice("named-lb", backends=ready_pod, ports=slice_ports),
        kubeapi.service("mysql-read", cluster_ip="127.0.0.96", ports=[3306]),
        kubeapi.service(
            "billing",
            external_name="db.example.test",
            ports=[kubeapi.service_port(port, name="mysql")],
        ),
    ]


def _with_hostname(svc: dict, hostname: str) -> dict:
    svc["status"]["loadBalancer"] = {"ingress": [{"hostname": hostname}]}
    return svc


@pytest.fixture(scope="module")
def api(ports: dict[str, int]) -> Iterator[FakeApiServer]:
    with FakeApiServer(_objects(ports["port"])) as server:
        yield server


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    chain = {
        "billing.default.svc.cluster.local.": [
            "billing.default.svc.cluster.local. 5 IN CNAME db.example.test.",
            "db.example.test. 5 IN CNAME db-1.example.test.",
            f"db-1.example.test. 5 IN A {EXTERNAL_DB}",
        ]
    }

    def answer(query: bytes) -> list[bytes]:
        name = str(dns.message.from_wire(query).question[0].name)
        if name in chain:
            return [reply(query, records=chain[name])]
        return [reply(query, rcode=dns.rcode.NXDOMAIN)]

    with LoopbackDns(answer) as server:
        yield server.port


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "config")


_EXPOSURE = (ServiceExists, EndpointsReady, NodeportConnect, LoadbalancerConnect)


def _run(
    target: str, kubeconfig: Path, checks: tuple = _EXPOSURE, dns_port: int | None = None
) -> Report:
    settings = Settings(
        kubeconfig=str(kubeconfig),
        timeout=1.0,
        dns=Endpoint("127.0.0.1", dns_port) if dns_port else None,
    )
    return runner.run([cls() for cls in checks], settings, parse_target(target))


def _rows(report: Report) -> dict:
    return {r.id: r for r in report.results}


def _ms(text: str) -> str:
    return re.sub(r"[0-9.]+ ms", "N ms", text)


# -- nodeport-connect ------------------------------------------------------------------------


def test_node_port_passes_when_a_ready_node_answers_with_each_node_as_evidence(
    kubeconfig: Path, ports: dict[str, int]
):
    port = ports["port"]

    row = _rows(_run("web.default", kubeconfig))["nodeport-connect"]

    assert row.status is Status.PASS
    assert _ms(row.summary) == (
        f"1 of 2 Ready nodes answer on nodePort {port}: node-1 {NODE_UP}:{port} (N ms); no "
        f"answer from node-2 {NODE_SILENT}:{port} refused (TCP reset)"
    )
    assert row.address == f"{NODE_UP}:{port}"
    nodes = row.evidence["nodes"]
    assert [(n["node"], n["internal_ip"], n["outcome"]) for n in nodes] == [
        ("node-1", NODE_UP, "connected"),
        ("node-2", NODE_SILENT, "reset"),
    ]
    assert row.evidence["not_probed"] == [
        {"node": "node-3", "internal_ip": NODE_DOWN, "ready": "False", "why": "Ready is False"}
    ]
    assert row.evidence["node_port"] == port


def test_node_port_nobody_takes_fails_naming_kube_proxy_and_the_local_policy(kubeconfig: Path):
    row = _rows(_run("closed.default", kubeconfig))["nodeport-connect"]

    assert row.status is Status.FAIL
    assert row.summary == (
        f"no node answers on nodePort 1: node-1 {NODE_UP}:1 refused (TCP reset), node-2 "
        f"{NODE_SILENT}:1 refused (TCP reset)"
    )
    assert "kube-proxy on the nodes has no rule for it" in row.remediation
    assert "With externalTrafficPolicy Local a node answers only if" in row.remediation


def test_cluster_ip_service_skips_the_node_port_and_the_load_balancer(kubeconfig: Path):
    rows = _rows(_run("mysql-read.default", kubeconfig))

    assert rows["nodeport-connect"].status is Status.SKIP
    assert rows["nodeport-connect"].summary == (
        "default/mysql-read is a ClusterIP Service: only NodePort and LoadBalancer Services "
        "have a nodePort"
    )
    assert rows["loadbalancer-connect"].summary == (
        "default/mysql-read is a ClusterIP Service: it has no load balancer"
    )


def test_node_port_checks_skip_with_the_reason_when_the_api_refuses(
    api: FakeApiServer, kubeconfig: Path
):
    api.credentials_expired = True
    try:
        rows = _rows(_run("web.default", kubeconfig))
    finally:
        api.credentials_expired = False

    assert rows["nodeport-connect"].status is Status.SKIP
    assert rows["nodeport-connect"].summary.startswith(
        "no Service object from the API: service-exists was skipped"
    )


def test_node_view_reads_internal_ip_and_an_unknown_ready_condition():
    silent = kubeapi.node("node-9", internal_ip="10.0.0.9", external_ip="203.0.113.9", ready=None)

    assert node_view(silent).internal_ip == "10.0.0.9"
    assert node_view(silent).ready == "Unknown"


# -- loadbalancer-connect --------------------------------------------------------------------


def test_load_balancer_ip_that_answers_passes(kubeconfig: Path, ports: dict[str, int]):
    port = ports["port"]

    row = _rows(_run("front.default", kubeconfig))["loadbalancer-connect"]

    assert row.status is Status.PASS
    assert _ms(row.summary) == f"load balancer {BALANCER}:{port} connected in N ms"
    assert row.evidence["entries"][0]["ip"] == BALANCER


def test_load_balancer_without_address_is_pending(kubeconfig: Path):
    row = _rows(_run("pending.default", kubeconfig))["loadbalancer-connect"]

    assert row.status is Status.FAIL
    assert row.summary == "load balancer has no address yet (pending)"
    assert "`kubectl describe service pending -n default`" in row.remediation


def test_load_balancer_hostname_is_resolved_with_the_system_resolver(
    kubeconfig: Path, ports: dict[str, int]
):
    port = ports["port"]

    row = _rows(_run("named-lb.default", kubeconfig))["loadbalancer-connect"]

    assert row.status is Status.PASS
    assert _ms(row.summary) == f"load balancer localhost (127.0.0.1:{port}) connected in N ms"
    resolution = row.evidence["entries"][0]["resolution"]
    assert (resolution["resolver"], resolution["addresses"][0]) == ("system resolver", "127.0.0.1")


# -- ExternalName ----------------------------------------------------------------------------


def test_external_name_follows_the_cname_chain_and_tcp_connect_probes_its_address(
    kubeconfig: Path, dns_port: int, ports: dict[str, int]
):
    port = ports["port"]

    report = _run(
        "billing.default",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves, TcpConnect, NodeportConnect),
        dns_port=dns_port,
    )

    rows = _rows(report)
    dns_row = rows["dns-resolves"]
    assert dns_row.status is Status.PASS
    assert _ms(dns_row.summary) == (
        f"billing.default.svc.cluster.local. -> CNAME db.example.test -> {EXTERNAL_DB} "
        "(ExternalName, as the API says) in N ms"
    )
    assert dns_row.evidence["cnames"] == ["db.example.test.", "db-1.example.test."]
    tcp = rows["tcp-connect"]
    assert tcp.status is Status.PASS
    assert (tcp.evidence["address"], tcp.evidence["port"]) == (EXTERNAL_DB, port)
    assert rows["endpoints-ready"].status is Status.SKIP
    assert rows["nodeport-connect"].summary.startswith("default/billing is an ExternalName Service")
    assert report.reachable is True
