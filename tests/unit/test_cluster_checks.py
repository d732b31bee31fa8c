"""service-exists, endpoints-ready and dns-resolves' comparison, run through the engine against
FakeApiServer and a DNS server on loopback. Every address a probe may touch is in 127.0.0.0/8."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from checks.dns_resolves import ApiView, DnsResolves, api_view, compare_with_api
from checks.endpoints_ready import EndpointsReady, from_endpoints, from_slices, split
from checks.service_exists import ServiceExists, choose_port
from checks.tcp_connect import TcpConnect
from k8sreach import runner
from k8sreach.config import Endpoint, Settings, parse_cidr
from k8sreach.dnsprobe import DnsOutcome
from k8sreach.result import Report, Status, failed, passed
from k8sreach.target import parse_target
from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import Backend, FakeApiServer
from tests.dnsfake import LoopbackDns, reply

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
CLUSTER_IP = "127.0.0.10"  # the healthy Service's ClusterIP: loopback, so tcp-connect may probe it
HEADLESS_POD = "127.0.0.21"  # the headless Service's ready pod, listening too


def _listen(host: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(16)
    return sock


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _objects(cluster_port: int, pod_port: int) -> list[dict]:
    mysql_port = kubeapi.service_port(cluster_port, name="mysql", target_port=3306)
    mysql_pods = [
        Backend("127.0.1.5", pod="mysql-0", node="node-1", hostname="mysql-0"),
        Backend("127.0.1.6", pod="mysql-1", node="node-2", hostname="mysql-1"),
    ]
    headless = [
        Backend(HEADLESS_POD, pod="mysql-0", node="node-1", hostname="mysql-0"),
        Backend("127.0.0.22", pod="mysql-1", node="node-2", hostname="mysql-1", ready=False),
    ]
    return [
        # healthy ClusterIP Service, two ready pods
        kubeapi.service(
            "mysql-read",
            cluster_ip=CLUSTER_IP,
            selector={"app": "mysql"},
            ports=[mysql_port],
        ),
        kubeapi.endpoint_slice(
            "mysql-read", backends=mysql_pods, ports=[{"name": "mysql", "port": 3306}]
        ),
        *(
            kubeapi.pod(b.pod, ip=b.ip, node=b.node, labels={"app": "mysql"}, ports=[3306])
            for b in mysql_pods
            if b.pod
        ),
        # two ports, so a run without --port must choose
        kubeapi.service(
            "mysql",
            cluster_ip="127.0.0.12",
            selector={"app": "mysql"},
            ports=[
                kubeapi.service_port(3306, name="mysql"),
                kubeapi.service_port(9104, name="metrics"),
            ],
        ),
        kubeapi.endpoint_slice(
            "mysql",
            backends=mysql_pods,
            ports=[{"name": "mysql", "port": 3306}, {"name": "metrics", "port": 9104}],
        ),
        # NodePort with a targetPort that differs
        kubeapi.service(
            "web",
            cluster_ip="127.0.0.13",
            type="NodePort",
            selector={"app": "web"},
            ports=[kubeapi.service_port(80, name="http", target_port=8080)],
            node_ports={80: 30080},
            external_traffic_policy="Local",
        ),
        # selector-less, with Endpoints written by hand for a database outside the cluster
        kubeapi.service(
            "external-db", cluster_ip="127.0.0.11", ports=[kubeapi.service_port(3306, name="mysql")]
        ),
        kubeapi.endpoints(
            "external-db",
            backends=[Backend("127.0.3.20")],
            ports=[{"name": "mysql", "port": 3306}],
        ),
        # selector-less, the hand-written port lacks the Service port's name
        kubeapi.service(
            "legacy-db", cluster_ip="127.0.0.14", ports=[kubeapi.service_port(3306, name="mysql")]
        ),
        kubeapi.endpoints("legacy-db", backends=[Backend("127.0.3.21")], ports=[3306]),
        # no pod carries the selector's labels
        kubeapi.service(
            "orders", cluster_ip="127.0.0.15", selector={"app": "orders"}, ports=[8080]
        ),
        kubeapi.endpoint_slice("orders"),
        # pods exist, none Ready
        kubeapi.service(
            "cart",
            cluster_ip="127.0.0.16",
            selector={"app": "cart"},
            ports=[kubeapi.service_port(80, target_port=8080)],
        ),
        kubeapi.endpoint_slice(
            "cart",
            backends=[Backend("127.0.1.30", pod="cart-0", node="node-1", ready=False)],
            ports=[{"port": 8080}],
        ),
        kubeapi.pod("cart-0", ip="127.0.1.30", labels={"app": "cart"}, ready=False),
        kubeapi.pod("cart-1", ip=None, node=None, phase="Pending", labels={"app": "cart"}),
        # Ready pods that do not declare the named targetPort: the controller gives no port
        kubeapi.service(
            "search",
            cluster_ip="127.0.0.17",
            selector={"app": "search"},
            ports=[kubeapi.service_port(80, target_port="web")],
        ),
        kubeapi.endpoint_slice(
            "search", backends=[Backend("127.0.1.40", pod="search-0", node="node-1")]
        ),
        kubeapi.pod("search-0", ip="127.0.1.40", labels={"app": "search"}, ports=[8080]),
        kubeapi.service("billing", external_name="billing.example.com", ports=[443]),
        # headless, in namespace db: one ready pod, one not
        kubeapi.service(
            "mysql",
            "db",
            headless=True,
            selector={"app": "mysql"},
            ports=[kubeapi.service_port(3306, name="mysql", target_port=pod_port)],
        ),
        kubeapi.endpoint_slice(
            "mysql", "db", backends=headless, ports=[{"name": "mysql", "port": pod_port}]
        ),
        kubeapi.service(
            "galera",
            "db",
            headless=True,
            selector={"app": "galera"},
            ports=[kubeapi.service_port(4567, name="galera")],
            publish_not_ready_addresses=True,
        ),
        kubeapi.endpoint_slice(
            "galera",
            "db",
            backends=[
                Backend("127.0.2.1", pod="galera-0", node="node-1"),
                Backend("127.0.2.2", pod="galera-1", node="node-2", ready=False),
            ],
            ports=[{"name": "galera", "port": 4567}],
        ),
    ]


class _Zone:
    """Answers of the loopback DNS server: FQDN -> zone-file records (absent: NXDOMAIN)."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    def answer(self, query: bytes) -> list[bytes]:
        name = str(dns.message.from_wire(query).question[0].name)
        if name not in self.records:
            return [reply(query, rcode=dns.rcode.NXDOMAIN)]
        return [reply(query, records=self.records[name])]

    def a(self, fqdn: str, *addresses: str) -> None:
        self.records[fqdn] = [f"{fqdn} 5 IN A {a}" for a in addresses]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kubernetes client honours proxy variables; everything here is on loopback
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.fixture(scope="module")
def listeners() -> Iterator[tuple[socket.socket, socket.socket]]:
    cluster, pod = _listen(CLUSTER_IP), _listen(HEADLESS_POD)
    try:
        yield cluster, pod
    finally:
        cluster.close()
        pod.close()


@pytest.fixture(scope="module")
def ports(listeners: tuple[socket.socket, socket.socket]) -> tuple[int, int]:
    return listeners[0].getsockname()[1], listeners[1].getsockname()[1]


@pytest.fixture(scope="module")
def server(ports: tuple[int, int]) -> Iterator[FakeApiServer]:
    with FakeApiServer(_objects(*ports)) as running:
        yield running


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[FakeApiServer]:
    yield server
    server.allow_all()
    server.clear_failures()
    server.credentials_expired = False


@pytest.fixture(scope="module")
def zone() -> Iterator[tuple[_Zone, int]]:
    records = _Zone()
    with LoopbackDns(records.answer) as running:
        yield records, running.port


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "config")


def _run(
    target: str,
    kubeconfig: Path,
    *,
    checks: tuple = (ServiceExists, EndpointsReady),
    dns_port: int | None = None,
    port: int | str | None = None,
    timeout: float = 1.0,
    **settings: object,
) -> Report:
    settings_obj = Settings(
        kubeconfig=str(kubeconfig),
        timeout=timeout,
        dns=Endpoint("127.0.0.1", dns_port) if dns_port else None,
        **settings,  # type: ignore[arg-type]
    )
    return runner.run([cls() for cls in checks], settings_obj, parse_target(target, port=port))


def _by_id(report: Report) -> dict:
    return {r.id: r for r in report.results}


# -- service-exists ---------------------------------------------------------------------------


def test_healthy_cluster_ip_service_is_probed_on_its_cluster_ip_and_port(
    kubeconfig: Path, zone: tuple[_Zone, int], ports: tuple[int, int]
):
    records, dns_port = zone
    records.a("mysql-read.default.svc.cluster.local.", CLUSTER_IP)
    cluster_port = ports[0]

    report = _run(
        "mysql-read.default",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves, TcpConnect),
        dns_port=dns_port,
    )

    rows = _by_id(report)
    assert [r.status for r in report.results] == [Status.PASS] * 4
    assert report.reachable is True
    svc = rows["service-exists"]
    assert svc.summary == (
        f"default/mysql-read: ClusterIP {CLUSTER_IP}, selector app=mysql, "
        f"port mysql {cluster_port}/TCP -> 3306"
    )
    assert svc.address == f"{CLUSTER_IP}:{cluster_port}"
    assert svc.evidence["ports"] == [
        {
            "name": "mysql",
            "port": cluster_port,
            "target_port": 3306,
            "protocol": "TCP",
            "node_port": None,
        }
    ]
    assert svc.evidence["selector"] == {"app": "mysql"}
    assert svc.evidence["internal_traffic_policy"] == "Cluster"
    eps = rows["endpoints-ready"]
    assert eps.summary == (
        f"2 ready for port mysql {cluster_port}/TCP -> 3306: 127.0.1.5:3306 (mysql-0 on node-1), "
        "127.0.1.6:3306 (mysql-1 on node-2)"
    )
    assert eps.evidence["source"] == "endpointslices"
    assert [(e["ip"], e["pod"], e["node"]) for e in eps.evidence["ready"]] == [
        ("127.0.1.5", "mysql-0", "node-1"),
        ("127.0.1.6", "mysql-1", "node-2"),
    ]
    dns_row = rows["dns-resolves"]
    assert dns_row.summary.startswith(
        f"mysql-read.default.svc.cluster.local. -> {CLUSTER_IP} (ClusterIP, as the API says) in "
    )
    assert dns_row.evidence["api_addresses"] == [CLUSTER_IP]
    tcp = rows["tcp-connect"]
    assert (tcp.evidence["address"], tcp.evidence["port"]) == (CLUSTER_IP, cluster_port)


def test_unknown_service_fails_with_the_closest_names_and_explains_nxdomain(
    kubeconfig: Path, zone: tuple[_Zone, int]
):
    _, dns_port = zone

    report = _run(
        "mysql-reed.default",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves, TcpConnect),
        dns_port=dns_port,
    )

    rows = _by_id(report)
    svc = rows["service-exists"]
    assert svc.status is Status.FAIL
    assert svc.summary == "service default/mysql-reed not found; closest: mysql-read, mysql"
    assert svc.remediation.startswith(
        "List the Services: `kubectl get services -n default`, e.g. "
        "`k8sreach doctor mysql-read.default`."
    )
    assert rows["endpoints-ready"].status is Status.SKIP
    assert rows["endpoints-ready"].caused_by == "service-exists"
    assert rows["dns-resolves"].status is Status.FAIL
    assert rows["dns-resolves"].summary.startswith("NXDOMAIN (authoritative):")
    assert rows["dns-resolves"].caused_by == "service-exists"
    assert rows["tcp-connect"].status is Status.SKIP
    assert rows["tcp-connect"].caused_by == "service-exists"
    assert report.first_failure.id == "service-exists"


def test_unknown_service_in_a_namespace_without_similar_names_lists_what_is_there(
    kubeconfig: Path,
):
    report = _run("zzzz.db", kubeconfig)

    assert _by_id(report)["service-exists"].summary == (
        "service db/zzzz not found; none has a similar name (there: galera, mysql)"
    )


def test_several_ports_and_no_port_given_warns_naming_them_and_tcp_connect_skips(
    kubeconfig: Path,
):
    report = _run("mysql.default", kubeconfig, checks=(ServiceExists, EndpointsReady, TcpConnect))

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.WARN
    assert rows["service-exists"].summary == (
        "default/mysql: ClusterIP 127.0.0.12, selector app=mysql; the Service has 2 ports "
        "(mysql 3306/TCP, metrics 9104/TCP); give -p NAME or -p NUMBER to probe one"
    )
    assert rows["endpoints-ready"].status is Status.PASS
    assert rows["endpoints-ready"].summary.startswith("2 ready for any of its ports: ")
    assert rows["tcp-connect"].status is Status.SKIP
    assert rows["tcp-connect"].summary == "no port known: give -p PORT or TARGET:PORT"


def test_named_port_resolves_to_its_number_and_the_endpoints_of_that_port(kubeconfig: Path):
    report = _run("mysql.default", kubeconfig, port="metrics")

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.PASS
    assert rows["service-exists"].address == "127.0.0.12:9104"
    assert rows["service-exists"].evidence["probed_port"]["name"] == "metrics"
    assert [e["port"] for e in rows["endpoints-ready"].evidence["ready"]] == [9104, 9104]


def test_unknown_port_name_fails_listing_the_ports(kubeconfig: Path):
    report = _run("mysql.default", kubeconfig, port="http")

    svc = _by_id(report)["service-exists"]
    assert svc.status is Status.FAIL
    assert svc.summary == (
        "default/mysql: ClusterIP 127.0.0.12, selector app=mysql: the Service has no port "
        "named 'http' (ports: mysql 3306/TCP, metrics 9104/TCP)"
    )
    assert "`k8sreach doctor mysql.default:mysql`" in svc.remediation


def test_port_number_not_on_the_service_warns_and_names_the_target_port(kubeconfig: Path):
    report = _run("web.default", kubeconfig, port=8080)

    svc = _by_id(report)["service-exists"]
    assert svc.status is Status.WARN
    assert svc.summary == (
        "default/web: NodePort, ClusterIP 127.0.0.13, selector app=web; port 8080 is not one "
        "of the Service's ports (http 80/TCP -> 8080 (nodePort 30080)); probing it anyway; "
        "8080 is the targetPort of http 80/TCP -> 8080 (nodePort 30080): through the Service "
        "the port is 80"
    )
    assert svc.evidence["external_traffic_policy"] == "Local"
    assert svc.evidence["ports"][0]["node_port"] == 30080


def test_external_name_service_is_an_alias_without_endpoints(kubeconfig: Path):
    report = _run("billing.default", kubeconfig)

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.PASS
    assert rows["service-exists"].summary == (
        "default/billing is an ExternalName Service: a DNS alias (CNAME) for billing.example.com; "
        "it has no ClusterIP and no endpoints, port 443/TCP"
    )
    assert rows["endpoints-ready"].status is Status.SKIP
    assert rows["endpoints-ready"].summary == (
        "an ExternalName Service has no endpoints: DNS answers a CNAME for billing.example.com"
    )


# -- endpoints-ready --------------------------------------------------------------------------


def test_headless_service_probes_a_ready_pod_directly_on_its_endpoint_port(
    kubeconfig: Path, zone: tuple[_Zone, int], ports: tuple[int, int]
):
    records, dns_port = zone
    records.a("mysql.db.svc.cluster.local.", HEADLESS_POD)
    pod_port = ports[1]

    report = _run(
        "mysql.db",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves, TcpConnect),
        dns_port=dns_port,
    )

    rows = _by_id(report)
    assert rows["service-exists"].summary == (
        "db/mysql is headless (no ClusterIP: DNS gives the pods' addresses, probed directly), "
        f"selector app=mysql, port mysql 3306/TCP -> {pod_port}"
    )
    assert rows["endpoints-ready"].summary == (
        f"1 ready for port mysql 3306/TCP -> {pod_port}: {HEADLESS_POD}:{pod_port} (mysql-0 on "
        f"node-1); not ready: 127.0.0.22:{pod_port} (mysql-1 on node-2)"
    )
    assert rows["endpoints-ready"].address == f"{HEADLESS_POD}:{pod_port}"
    assert rows["dns-resolves"].status is Status.PASS
    assert rows["dns-resolves"].evidence["api_addresses"] == [HEADLESS_POD]
    assert rows["tcp-connect"].status is Status.PASS
    assert (rows["tcp-connect"].evidence["address"], rows["tcp-connect"].evidence["port"]) == (
        HEADLESS_POD,
        pod_port,
    )


def test_headless_dns_answer_with_a_gone_pod_fails_showing_both(
    kubeconfig: Path, zone: tuple[_Zone, int]
):
    records, dns_port = zone
    records.a("mysql.db.svc.cluster.local.", HEADLESS_POD, "127.0.0.23")

    report = _run(
        "mysql.db",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves),
        dns_port=dns_port,
    )

    dns_row = _by_id(report)["dns-resolves"]
    assert dns_row.status is Status.FAIL
    assert dns_row.summary == (
        "DNS answers 127.0.0.21, 127.0.0.23 but the API's ready endpoints of the headless "
        "Service are 127.0.0.21 (stale record)"
    )
    assert dns_row.evidence["unexpected"] == ["127.0.0.23"]
    assert dns_row.evidence["answers"] == ["127.0.0.21", "127.0.0.23"]


def test_publish_not_ready_addresses_puts_not_ready_pods_in_the_expected_dns_answer(
    kubeconfig: Path, zone: tuple[_Zone, int]
):
    records, dns_port = zone
    records.a("galera.db.svc.cluster.local.", "127.0.2.1", "127.0.2.2")

    report = _run(
        "galera.db",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves),
        dns_port=dns_port,
    )

    dns_row = _by_id(report)["dns-resolves"]
    assert dns_row.status is Status.PASS
    assert dns_row.evidence["api_addresses"] == ["127.0.2.1", "127.0.2.2"]


def test_selector_less_service_reads_the_hand_written_endpoints_and_keeps_the_cluster_ip(
    kubeconfig: Path,
):
    report = _run("external-db.default", kubeconfig)

    rows = _by_id(report)
    assert rows["service-exists"].summary == (
        "default/external-db: ClusterIP 127.0.0.11, no selector (endpoints written by hand), "
        "port mysql 3306/TCP"
    )
    assert rows["service-exists"].address == "127.0.0.11:3306"
    eps = rows["endpoints-ready"]
    assert eps.status is Status.PASS
    assert eps.evidence["source"] == "endpoints"
    assert eps.summary == (
        "1 ready for port mysql 3306/TCP: 127.0.3.20:3306 (no pod: written by hand)"
    )


def test_hand_written_endpoints_without_the_port_name_fail_saying_so(kubeconfig: Path):
    report = _run("legacy-db.default", kubeconfig)

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.FAIL
    assert eps.summary == (
        "no ready endpoints for port mysql 3306/TCP: the Endpoints written for this "
        "selector-less Service carry port(s) '(unnamed)', but the Service port is 'mysql': "
        "kube-proxy pairs them by name"
    )
    assert "kubectl edit endpoints legacy-db -n default" in eps.remediation


def test_no_pod_matching_the_selector_fails_with_the_selector(kubeconfig: Path):
    report = _run("orders.default", kubeconfig)

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.FAIL
    assert eps.summary == (
        "no ready endpoints for port 8080/TCP: no pods match the selector app=orders in "
        "namespace default"
    )
    assert eps.evidence["pods"] == []
    assert "kubectl get pods -n default --show-labels" in eps.remediation


def test_pods_not_ready_are_named_with_their_reasons(kubeconfig: Path):
    report = _run("cart.default", kubeconfig)

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.FAIL
    assert eps.summary == (
        "no ready endpoints for port 80/TCP -> 8080 (1 not ready): 2 pod(s) match app=cart but "
        "none is Ready: cart-0 (ReadinessProbe), cart-1 (Unschedulable)"
    )
    assert [(p["name"], p["reason"]) for p in eps.evidence["pods"]] == [
        ("cart-0", "ReadinessProbe"),
        ("cart-1", "Unschedulable"),
    ]
    assert eps.evidence["not_ready"][0]["pod"] == "cart-0"
    assert eps.remediation.startswith(
        "See why the pods are not Ready: `kubectl describe pod cart-0"
    )


def test_named_target_port_missing_on_the_pods_fails_naming_what_they_declare(kubeconfig: Path):
    report = _run("search.default", kubeconfig)

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.FAIL
    assert eps.summary == (
        "no ready endpoints for port 80/TCP -> web: the Service's targetPort 'web' is not a "
        "named port of the pods' containers (search-0 declares 8080/TCP (unnamed))"
    )
    assert eps.evidence["port_name_missing_on"] == ["search-0"]


def test_endpoints_are_read_when_the_api_serves_no_endpoint_slices(
    api: FakeApiServer, kubeconfig: Path
):
    api.fail(404, "the server could not find the requested resource", "/apis/discovery.k8s.io")
    api.add(
        kubeapi.endpoints(
            "mysql-read",
            backends=[Backend("127.0.1.5", pod="mysql-0", node="node-1")],
            ports=[{"name": "mysql", "port": 3306}],
        )
    )
    try:
        report = _run("mysql-read.default", kubeconfig)
    finally:
        api.remove("Endpoints", "mysql-read")

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.PASS
    assert eps.evidence["source"] == "endpoints"
    assert [e["ip"] for e in eps.evidence["ready"]] == ["127.0.1.5"]


# -- the API refusing or absent ---------------------------------------------------------------


def test_expired_credentials_skip_the_cluster_checks_naming_the_request(
    api: FakeApiServer, kubeconfig: Path, zone: tuple[_Zone, int]
):
    records, dns_port = zone
    records.a("mysql-read.default.svc.cluster.local.", CLUSTER_IP)
    api.credentials_expired = True

    report = _run(
        "mysql-read.default",
        kubeconfig,
        checks=(ServiceExists, EndpointsReady, DnsResolves),
        dns_port=dns_port,
    )

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.SKIP
    assert rows["service-exists"].summary == (
        'cannot get services "mysql-read" in namespace default: the API server at '
        f'{api.url} refused the credentials of user "lab-user" of context "lab" (401 '
        "Unauthorized): they may have expired; renew them (log in again, or get a fresh token "
        "or certificate) and retry"
    )
    assert rows["endpoints-ready"].status is Status.SKIP
    assert rows["endpoints-ready"].caused_by == "service-exists"
    assert rows["dns-resolves"].status is Status.PASS
    assert "api_addresses" not in rows["dns-resolves"].evidence
    assert report.exit_code == 0


def test_forbidden_get_skips_naming_verb_resource_and_namespace(
    api: FakeApiServer, kubeconfig: Path
):
    api.forbid("get", "services", "default")

    report = _run("mysql-read.default", kubeconfig)

    assert _by_id(report)["service-exists"].summary == (
        'not allowed to get services "mysql-read" in namespace default (403 Forbidden): '
        'services "mysql-read" is forbidden: User "system:serviceaccount:default:k8sreach" '
        'cannot get resource "services" in API group "" in the namespace "default"'
    )
    assert report.exit_code == 0


def test_forbidden_endpoint_slices_skip_endpoints_ready_naming_them(
    api: FakeApiServer, kubeconfig: Path
):
    api.forbid("list", "endpointslices")

    report = _run("mysql-read.default", kubeconfig)

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.PASS
    assert rows["endpoints-ready"].status is Status.SKIP
    assert rows["endpoints-ready"].summary.startswith(
        "not allowed to list endpointslices in namespace default (403 Forbidden): "
    )


def test_forbidden_pods_still_fails_no_endpoints_saying_the_pods_could_not_be_read(
    api: FakeApiServer, kubeconfig: Path
):
    api.forbid("list", "pods")

    report = _run("orders.default", kubeconfig)

    eps = _by_id(report)["endpoints-ready"]
    assert eps.status is Status.FAIL
    assert eps.summary == (
        "no ready endpoints for port 8080/TCP: the pods behind selector app=orders could not "
        "be read (not allowed to list pods in namespace default (403 Forbidden): pods is "
        'forbidden: User "system:serviceaccount:default:k8sreach" cannot list resource "pods" '
        'in API group "" in the namespace "default")'
    )


def test_unreachable_api_server_skips_at_once_naming_the_request(
    api: FakeApiServer, tmp_path: Path
):
    server = f"https://127.0.0.1:{_unused_port()}"
    path = api.write_kubeconfig(tmp_path / "config", server=server)

    started = time.monotonic()
    report = _run("mysql-read.default", path)
    elapsed = time.monotonic() - started

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.SKIP
    assert rows["service-exists"].summary == (
        f"cannot reach the API server at {server}: connection refused (get services "
        '"mysql-read" in namespace default)'
    )
    assert rows["endpoints-ready"].status is Status.SKIP
    assert elapsed < 1.0


def test_silent_api_server_skips_within_the_probe_timeout(api: FakeApiServer, tmp_path: Path):
    with socket.socket() as tarpit:  # completes TCP connections, never speaks TLS
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(8)
        server = f"https://127.0.0.1:{tarpit.getsockname()[1]}"
        path = api.write_kubeconfig(tmp_path / "config", server=server)
        started = time.monotonic()
        report = _run("mysql-read.default", path, timeout=0.5)
        elapsed = time.monotonic() - started

    rows = _by_id(report)
    assert rows["service-exists"].status is Status.SKIP
    assert rows["service-exists"].summary == (
        f"the API server at {server} did not answer within 0.5 s (get services "
        '"mysql-read" in namespace default)'
    )
    assert elapsed < 1.2


def test_no_kubeconfig_skips_the_cluster_checks_saying_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HOME", str(tmp_path))
    report = runner.run(
        [ServiceExists(), EndpointsReady()], Settings(), parse_target("mysql-read.default")
    )

    rows = _by_id(report)
    assert rows["service-exists"].summary.startswith("no kubeconfig: give --kubeconfig FILE")
    assert rows["endpoints-ready"].status is Status.SKIP


# -- credentials never shown -------------------------------------------------------------------


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS and k != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "k8sreach", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _secrets_of(path: Path) -> list[str]:
    """Return the kubeconfig's credentials: token, base64 data, and the PEM body lines."""
    import yaml

    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    found = [user["token"]] if "token" in user else []
    for key in ("client-key-data", "client-certificate-data"):
        if key in user:
            found.append(user[key])
            pem = base64.b64decode(user[key]).decode()
            found += [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return found


@pytest.mark.parametrize("login", ["token", "client-certificate"])
def test_no_credential_appears_in_json_table_or_debug_output(
    api: FakeApiServer, zone: tuple[_Zone, int], tmp_path: Path, login: str
):
    records, dns_port = zone
    records.a("mysql-read.default.svc.cluster.local.", CLUSTER_IP)
    path = api.write_kubeconfig(tmp_path / "config", client_cert=login == "client-certificate")
    secrets = _secrets_of(path)
    assert secrets
    base = ["doctor", "--kubeconfig", str(path), "--dns", f"127.0.0.1:{dns_port}"]
    base += ["--timeout", "1"]

    runs = {
        "json": _cli([*base[:1], "mysql-read.default", *base[1:], "--debug", "-o", "json"]),
        "table": _cli([*base[:1], "mysql-read.default", *base[1:], "-v"]),
        "refused": _cli([*base[:1], "nope.default", *base[1:], "--debug", "-o", "json"]),
    }
    api.credentials_expired = True
    runs["expired"] = _cli([*base[:1], "mysql-read.default", *base[1:], "--debug", "-o", "json"])

    doc = json.loads(runs["json"].stdout)
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert (statuses["service-exists"], statuses["endpoints-ready"]) == ("pass", "pass")
    assert "GET /api/v1/namespaces/default/services/mysql-read" in runs["json"].stderr
    expired = {c["id"]: c for c in json.loads(runs["expired"].stdout)["checks"]}
    assert "401 Unauthorized" in expired["service-exists"]["summary"]
    for name, done in runs.items():
        output = done.stdout + done.stderr
        for secret in secrets:
            assert secret not in output, f"{login} credential in the {name} run's output"


# -- the pure parts -----------------------------------------------------------------------------


def test_choose_port_prefers_tcp_when_a_number_is_both_udp_and_tcp():
    entries = [
        kubeapi.service_port(53, name="dns", protocol="UDP"),
        kubeapi.service_port(53, name="dns-tcp"),
    ]
    assert choose_port(entries, 53).entry["name"] == "dns-tcp"


def test_choose_port_says_when_a_number_is_a_node_port():
    entries = [kubeapi.service_port(80, name="http", node_port=30080)]
    choice = choose_port(entries, 30080)
    assert choice.status is Status.WARN
    assert choice.problem.endswith(
        "30080 is the nodePort of http 80/TCP (nodePort 30080): it is open on the nodes' "
        "addresses, the ClusterIP listens on 80"
    )


def test_slices_and_endpoints_give_the_same_split_for_the_probed_port():
    backends = [
        Backend("10.244.1.5", pod="mysql-0", node="node-1"),
        Backend("10.244.2.6", pod="mysql-1", node="node-2", ready=False),
        Backend("10.244.3.7", pod="mysql-2", node="node-3", terminating=True),
    ]
    port = kubeapi.service_port(3306, name="mysql")
    ports = [{"name": "mysql", "port": 3306}]
    from_api = split(
        from_slices([kubeapi.endpoint_slice("m", backends=backends, ports=ports)]), port
    )
    legacy = split(from_endpoints(kubeapi.endpoints("m", backends=backends, ports=ports)), port)

    assert (
        [ep.ip for ep, _ in from_api.ready] == [ep.ip for ep, _ in legacy.ready] == ["10.244.1.5"]
    )
    assert [ep.ip for ep, _ in from_api.not_ready] == ["10.244.2.6", "10.244.3.7"]
    assert from_api.not_ready[1][0].terminating is True
    assert [ep.ip for ep, _ in legacy.not_ready] == ["10.244.2.6"]  # terminating ones dropped


def _answer(*addresses: str, cnames: tuple[str, ...] = ()) -> DnsOutcome:
    return DnsOutcome(
        "192.168.77.53",
        53,
        "mysql-read.default.svc.cluster.local.",
        "A",
        "udp",
        "answer",
        rcode="NOERROR",
        addresses=addresses,
        cnames=cnames,
        latency_ms=1.2,
    )


TARGET = parse_target("mysql-read.default")


def test_stale_cluster_ip_answer_fails_showing_both_addresses():
    outcome = _answer("10.96.86.99")
    base = passed("resolved", evidence={"answers": ["10.96.86.99"]})

    finding = compare_with_api(base, outcome, TARGET, ApiView("cluster-ip", ("10.96.86.83",)))

    assert finding.status is Status.FAIL
    assert finding.summary == (
        "DNS answers 10.96.86.99 but the API says the ClusterIP is 10.96.86.83 (stale record)"
    )
    assert finding.evidence["api_addresses"] == ["10.96.86.83"]
    assert finding.evidence["answers"] == ["10.96.86.99"]


def test_answer_outside_the_cluster_ranges_is_called_foreign():
    outcome = _answer("203.0.113.7")
    svc_cidr = (parse_cidr("10.96.0.0/12"),)

    finding = compare_with_api(
        passed("x"), outcome, TARGET, ApiView("cluster-ip", ("10.96.86.83",)), svc_cidr
    )

    assert finding.summary == (
        "DNS answers 203.0.113.7 but the API says the ClusterIP is 10.96.86.83 "
        "(not a cluster address)"
    )


def test_matching_answer_outside_the_given_ranges_warns_about_the_ranges():
    finding = compare_with_api(
        passed("x"),
        _answer("10.100.0.5"),
        TARGET,
        ApiView("cluster-ip", ("10.100.0.5",)),
        (parse_cidr("10.96.0.0/16"),),
    )

    assert finding.status is Status.WARN
    assert finding.facts["address"] == "10.100.0.5"


def test_answer_for_a_service_the_api_lacks_is_a_stale_record():
    finding = compare_with_api(passed("x"), _answer("10.96.86.83"), TARGET, ApiView("missing"))

    assert finding.summary == (
        "DNS answers 10.96.86.83 but the API has no such Service (stale record)"
    )


def test_headless_answer_missing_a_ready_pod_names_it():
    view = ApiView("headless", ("10.244.1.5", "10.244.2.6"))

    finding = compare_with_api(passed("x"), _answer("10.244.1.5"), TARGET, view)

    assert finding.summary == (
        "DNS answers 10.244.1.5 but the API's ready endpoints of the headless Service are "
        "10.244.1.5, 10.244.2.6 (missing: 10.244.2.6)"
    )


def test_external_name_answer_must_carry_the_alias():
    view = ApiView("external-name", external_name="billing.example.com")

    good = compare_with_api(
        passed("x"), _answer("127.0.5.5", cnames=("billing.example.com.",)), TARGET, view
    )
    bad = compare_with_api(passed("x"), _answer("127.0.5.5"), TARGET, view)

    assert good.status is Status.PASS
    assert bad.summary == (
        "DNS answers 127.0.5.5 but the API says it is an alias (CNAME) for billing.example.com"
    )


def test_api_view_of_each_service_kind():
    cluster = kubeapi.service("a", cluster_ip="10.96.0.5")
    headless = kubeapi.service("b", headless=True, publish_not_ready_addresses=True)
    backends = {"ready": ["10.244.2.6", "10.244.1.5"], "not_ready": ["10.244.3.7"]}

    assert api_view(cluster, None) == ApiView("cluster-ip", ("10.96.0.5",))
    assert api_view(headless, backends) == ApiView(
        "headless", ("10.244.1.5", "10.244.2.6", "10.244.3.7")
    )
    assert api_view(headless, None) is None
    assert api_view(None, None) is None
    assert api_view(None, None, service_missing=True) == ApiView("missing")


def test_nxdomain_for_a_service_the_api_has_says_so():
    outcome = DnsOutcome(
        "192.168.77.53",
        53,
        "mysql-read.default.svc.cluster.local.",
        "A",
        "udp",
        "answer",
        rcode="NXDOMAIN",
        flags=("AA", "QR"),
    )
    base = failed("NXDOMAIN (authoritative): 192.168.77.53:53 says it does not exist")

    finding = compare_with_api(base, outcome, TARGET, ApiView("cluster-ip", ("10.96.86.83",)))

    assert finding.summary == (
        "NXDOMAIN (authoritative): 192.168.77.53:53 says it does not exist, but the API says "
        "the ClusterIP is 10.96.86.83"
    )
    assert "that the cluster domain really is cluster.local" in finding.remediation
