"""End-to-end: the cluster view on the lab, with the fake API server beside it.

The fake kube-apiserver runs inside the lab's client namespace on 127.0.0.1 and serves objects
that mirror the lab (mysql-read's ClusterIP, mysql-0 on node-1, ...). Each test starts its own
server with the objects it needs, so a Service can be headless, selector-less or a NodePort
without the lab changing; what a test adds to the lab (a DNAT rule on the node, the ingress
controller stand-in, a hosts file for the client) it removes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import Backend
from tests.e2e.helpers import Run, doctor, fault

pytestmark = pytest.mark.lab

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_READY_WAIT = 30.0  # seconds a helper process may take to listen (2 cores, other labs running)
_STANDIN = Path(__file__).resolve().parents[1] / "ingress_standin.py"
NODE = "node-1"
NODE_PORT = 30306
WEB_PORT = 8080  # the HTTP backend stand-in in mysql-0's namespace
INGRESS_HOSTS = ("shop.example.test", "other.example.test", "empty.example.test")
_CHAIN = (
    "route-present",
    "dns-resolves",
    "bgp-peer-established",
    "service-exists",
    "endpoints-ready",
    "tcp-connect",
    "nodeport-connect",
    "loadbalancer-connect",
)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kubernetes client honours proxy variables; the API server is on the client's loopback
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


# -- helpers: processes in lab namespaces ------------------------------------------------------


def _in_netns(lab: Any, host: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", lab.ns[host], *argv]


def _spawn(argv: Sequence[str], what: str) -> subprocess.Popen[str]:
    """Start a helper process and wait (bounded) for its 'ready' line."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + _READY_WAIT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{what} did not get ready within {_READY_WAIT:g} s")
            readable, _, _ = select.select([proc.stdout], [], [], left)
            if not readable:
                continue
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("ready"):
                return proc
            if not line:
                err = proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
                raise RuntimeError(f"{what} exited before it was ready: {err.strip()}")
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def api_server(lab: Any, objects: Sequence[dict], *, expired: bool = False) -> Iterator[str]:
    """Serve `objects` from a fake API server in the client namespace; yield a kubeconfig.

    expired: the kubeconfig carries a token the server does not know, so every request is
    answered 401 as for expired credentials.
    """
    with tempfile.TemporaryDirectory(prefix="k8sreach-lab-api-") as tmp:
        objects_file = Path(tmp) / "objects.json"
        objects_file.write_text(json.dumps(list(objects)))
        config = Path(tmp) / "kubeconfig"
        argv = [sys.executable, "-m", "k8sreach.testing.kubeapi", "--host", "127.0.0.1"]
        argv += ["--port", "0", "--objects", str(objects_file), "--kubeconfig", str(config)]
        argv += ["--max-seconds", "600"]
        proc = _spawn(lab.client_argv(argv), "the fake API server")
        try:
            if expired:
                import yaml

                doc = yaml.safe_load(config.read_text())
                doc["users"][0]["user"]["token"] = "expired-token-of-the-lab-user"
                config.write_text(yaml.safe_dump(doc))
            yield str(config)
        finally:
            _stop(proc)


def lab_objects(
    lab: Any,
    *,
    service_type: str = "ClusterIP",
    selector: bool = True,
    pod_ready: bool = True,
    extra: Sequence[dict] = (),
) -> list[dict]:
    """Return API objects that mirror the lab: mysql-read and the headless mysql, mysql-0 on
    node-1, kube-dns, and node-1's CalicoNodeStatus with its session to the gateway."""
    port = kubeapi.service_port(lab.service_port, name=lab.service_port_name, target_port=3306)
    pod_port = [{"name": lab.service_port_name, "port": lab.pod_port}]
    mysql_0 = Backend(lab.pod_ip, pod=lab.pod_name, node=NODE, ready=pod_ready)
    labels = {"app": "mysql"}
    objects = [
        kubeapi.node(NODE, internal_ip=lab.node_ip, pod_cidr=lab.pod_block),
        kubeapi.pod(
            lab.pod_name,
            ip=lab.pod_ip,
            node=NODE,
            labels=labels,
            ready=pod_ready,
            host_ip=lab.node_ip,
            ports=[{"name": lab.service_port_name, "containerPort": lab.pod_port}],
        ),
        kubeapi.service(
            lab.service,
            lab.namespace,
            cluster_ip=lab.service_ip,
            type=service_type,
            selector=labels if selector else None,
            ports=[port],
            node_ports={lab.service_port: NODE_PORT},
        ),
        kubeapi.service(
            "mysql",
            headless=True,
            selector=labels,
            ports=[kubeapi.service_port(3306, name="mysql")],
        ),
        kubeapi.endpoint_slice(
            "mysql",
            backends=[Backend(lab.pod_ip, pod=lab.pod_name, node=NODE, hostname=lab.pod_name)],
            ports=pod_port,
        ),
        kubeapi.service(
            "kube-dns",
            "kube-system",
            cluster_ip=lab.kube_dns_ip,
            selector={"k8s-app": "kube-dns"},
            ports=[
                kubeapi.service_port(53, name="dns", protocol="UDP"),
                kubeapi.service_port(53, name="dns-tcp"),
            ],
        ),
        kubeapi.calico_node_status(
            NODE,
            peers=[kubeapi.bgp_peer(lab.gateway_node_ip, type="GlobalPeer")],
            router_id=lab.node_ip,
        ),
        *extra,
    ]
    if selector:
        objects.append(
            kubeapi.endpoint_slice(lab.service, lab.namespace, backends=[mysql_0], ports=pod_port)
        )
    else:
        # hand-written Endpoints, as for a database outside the cluster: here at mysql-0
        objects.append(
            kubeapi.endpoints(
                lab.service, lab.namespace, backends=[Backend(lab.pod_ip)], ports=pod_port
            )
        )
    return objects


def _cluster_doctor(lab: Any, kubeconfig: str, *extra: str, **kw: Any) -> Run:
    return doctor(lab, "--kubeconfig", kubeconfig, *extra, ssh=False, **kw)


# -- Service runs ---------------------------------------------------------------------------


def test_healthy_cluster_ip_passes_every_check_with_the_api_as_evidence(lab):
    with api_server(lab, lab_objects(lab)) as config:
        run = _cluster_doctor(lab, config, port=False)

    assert run.code == 0, run.stdout + run.stderr
    assert run.doc["reachable"] is True
    statuses = run.statuses()
    assert set(statuses.values()) <= {"pass", "skip"}
    assert {k: statuses[k] for k in _CHAIN} == {
        "route-present": "pass",
        "dns-resolves": "pass",
        "bgp-peer-established": "pass",
        "service-exists": "pass",
        "endpoints-ready": "pass",
        "tcp-connect": "pass",
        "nodeport-connect": "skip",
        "loadbalancer-connect": "skip",
    }
    assert run.check("service-exists")["summary"] == (
        f"default/mysql-read: ClusterIP {lab.service_ip}, selector app=mysql, port mysql 3306/TCP"
    )
    assert run.check("endpoints-ready")["summary"] == (
        f"1 ready for port mysql 3306/TCP: {lab.pod_ip}:3306 (mysql-0 on node-1)"
    )
    dns = run.check("dns-resolves")
    assert dns["summary"].startswith(
        f"{lab.service_fqdn}. -> {lab.service_ip} (ClusterIP, as the API says) in "
    )
    assert dns["evidence"]["api_addresses"] == [lab.service_ip]
    tcp = run.check("tcp-connect")["evidence"]
    assert (tcp["address"], tcp["port"], tcp["outcome"]) == (lab.service_ip, 3306, "connected")
    bgp = run.check("bgp-peer-established")
    assert bgp["evidence"]["source"] == "CalicoNodeStatus (node-1)"
    assert [(p["node"], p["address"], p["info"]) for p in bgp["evidence"]["peers"]] == [
        (NODE, lab.gateway_node_ip, "Established")
    ]
    assert run.check("nodeport-connect")["summary"] == (
        "default/mysql-read is a ClusterIP Service: only NodePort and LoadBalancer Services "
        "have a nodePort"
    )


def test_headless_service_resolves_to_the_pod_and_is_probed_there(lab):
    with api_server(lab, lab_objects(lab)) as config:
        run = _cluster_doctor(lab, config, target="mysql.default", port=False)

    assert run.code == 0, run.stdout + run.stderr
    assert run.check("service-exists")["summary"] == (
        "default/mysql is headless (no ClusterIP: DNS gives the pods' addresses, probed "
        "directly), selector app=mysql, port mysql 3306/TCP"
    )
    dns = run.check("dns-resolves")
    assert dns["summary"].startswith(
        f"{lab.headless_fqdn}. -> {lab.pod_ip} (pod addresses (headless), as the API says)"
    )
    tcp = run.check("tcp-connect")["evidence"]
    assert (tcp["address"], tcp["port"], tcp["outcome"]) == (lab.pod_ip, 3306, "connected")
    route = run.check("route-present")["evidence"]
    assert route["checked"][0]["destination"] == lab.pod_ip


def test_selector_less_service_uses_the_hand_written_endpoints(lab):
    with api_server(lab, lab_objects(lab, selector=False)) as config:
        run = _cluster_doctor(lab, config, port=False)

    assert run.code == 0, run.stdout + run.stderr
    assert run.check("service-exists")["summary"] == (
        f"default/mysql-read: ClusterIP {lab.service_ip}, no selector (endpoints written by "
        "hand), port mysql 3306/TCP"
    )
    eps = run.check("endpoints-ready")
    assert eps["evidence"]["source"] == "endpoints"
    assert eps["summary"] == (
        f"1 ready for port mysql 3306/TCP: {lab.pod_ip}:3306 (no pod: written by hand)"
    )
    assert run.check("tcp-connect")["status"] == "pass"


def test_node_port_is_probed_on_the_nodes_internal_ip(lab):
    dnat = ["-d", f"{lab.node_ip}/32", "-p", "tcp", "--dport", str(NODE_PORT)]
    dnat += ["-j", "DNAT", "--to-destination", f"{lab.pod_ip}:{lab.pod_port}"]
    with api_server(lab, lab_objects(lab, service_type="NodePort")) as config:
        closed = _cluster_doctor(lab, config, "--timeout", "1", port=False)
        added = lab.run("node", ["iptables", "-t", "nat", "-A", "PREROUTING", *dnat])
        assert added.returncode == 0, added.stderr
        try:
            run = _cluster_doctor(lab, config, port=False)
        finally:
            lab.run("node", ["iptables", "-t", "nat", "-D", "PREROUTING", *dnat])

    node_port = run.check("nodeport-connect")
    assert node_port["status"] == "pass", node_port
    assert node_port["summary"].startswith(
        f"1 of 1 Ready nodes answer on nodePort {NODE_PORT}: node-1 {lab.node_ip}:{NODE_PORT} ("
    )
    assert node_port["evidence"]["nodes"][0]["outcome"] == "connected"
    assert run.check("service-exists")["summary"] == (
        f"default/mysql-read: NodePort, ClusterIP {lab.service_ip}, selector app=mysql, port "
        f"mysql 3306/TCP (nodePort {NODE_PORT})"
    )
    assert run.check("loadbalancer-connect")["summary"] == (
        "default/mysql-read is a NodePort Service: it has no load balancer"
    )
    assert run.code == 0
    # before the DNAT the node itself answers that nothing listens on the port
    refused = closed.check("nodeport-connect")
    assert refused["status"] == "fail"
    assert refused["summary"].startswith(
        f"no node answers on nodePort {NODE_PORT}: node-1 {lab.node_ip}:{NODE_PORT} refused"
    )
    assert closed.doc["first_failure"] == "nodeport-connect"


def test_stale_dns_answer_fails_showing_the_api_clusterip(lab):
    with api_server(lab, lab_objects(lab)) as config, fault(lab, "kube-dns-stale"):
        run = _cluster_doctor(lab, config, port=False)

    assert run.code == 1
    assert run.doc["first_failure"] == "dns-resolves"
    dns = run.check("dns-resolves")
    assert dns["summary"] == (
        f"DNS answers {lab.stale_service_ip} but the API says the ClusterIP is "
        f"{lab.service_ip} (stale record)"
    )
    assert dns["evidence"]["unexpected"] == [lab.stale_service_ip]
    assert dns["evidence"]["answers"] == [lab.stale_service_ip]
    # the probe goes to the API's ClusterIP, which still works
    assert run.check("tcp-connect")["evidence"]["address"] == lab.service_ip
    assert run.check("tcp-connect")["status"] == "pass"


def test_zero_ready_endpoints_fail_endpoints_and_explain_the_refusal(lab):
    objects = lab_objects(lab, pod_ready=False)
    with api_server(lab, objects) as config, fault(lab, "no-endpoints-reject"):
        run = _cluster_doctor(lab, config, port=False)

    assert run.code == 1
    assert run.doc["first_failure"] == "endpoints-ready"
    eps = run.check("endpoints-ready")
    assert eps["summary"] == (
        "no ready endpoints for port mysql 3306/TCP (1 not ready): 1 pod(s) match app=mysql "
        "but none is Ready: mysql-0 (ReadinessProbe)"
    )
    assert eps["evidence"]["not_ready"][0]["ip"] == lab.pod_ip
    tcp = run.check("tcp-connect")
    assert tcp["status"] == "fail"
    assert tcp["caused_by"] == "endpoints-ready"
    assert run.check("dns-resolves")["status"] == "pass"


def test_expired_credentials_skip_the_cluster_checks_and_the_network_chain_still_runs(lab):
    with api_server(lab, lab_objects(lab), expired=True) as config:
        run = _cluster_doctor(lab, config)

    assert run.code == 0, run.stdout + run.stderr
    svc = run.check("service-exists")
    assert svc["status"] == "skip"
    assert svc["summary"].startswith(
        'cannot get services "mysql-read" in namespace default: the API server at '
        "https://127.0.0.1:"
    )
    assert (
        'refused the credentials of user "lab-user" of context "lab" (401 Unauthorized)'
        in (svc["summary"])
    )
    assert run.check("endpoints-ready")["status"] == "skip"
    assert run.check("endpoints-ready")["caused_by"] == "service-exists"
    bgp = run.check("bgp-peer-established")
    assert bgp["status"] == "skip"
    assert bgp["summary"].startswith("no access to the gateway: give --ssh DEST")
    assert "cannot list caliconodestatuses: " in bgp["summary"]
    for check_id in ("route-present", "dns-resolves", "tcp-connect"):
        assert run.check(check_id)["status"] == "pass", run.check(check_id)
    assert "api_addresses" not in run.check("dns-resolves")["evidence"]
    assert "expired-token-of-the-lab-user" not in run.stdout + run.stderr


# -- Ingress runs -----------------------------------------------------------------------------


def _ingress_objects(lab: Any) -> list[dict]:
    web = [Backend(lab.pod_ip, pod=lab.pod_name, node=NODE)]
    lb = [lab.node_ip]
    return lab_objects(
        lab,
        extra=[
            kubeapi.ingress(
                "shop",
                host="shop.example.test",
                service="web",
                port="http",
                path="/app",
                load_balancer_ips=lb,
            ),
            kubeapi.ingress(
                "empty",
                host="empty.example.test",
                service="web-empty",
                port=80,
                load_balancer_ips=lb,
            ),
            kubeapi.service(
                "web",
                cluster_ip="10.96.0.80",
                selector={"app": "mysql"},
                ports=[kubeapi.service_port(80, name="http", target_port=WEB_PORT)],
            ),
            kubeapi.endpoint_slice("web", backends=web, ports=[{"name": "http", "port": WEB_PORT}]),
            kubeapi.service(
                "web-empty", cluster_ip="10.96.0.81", selector={"app": "shop"}, ports=[80]
            ),
            kubeapi.endpoint_slice("web-empty"),
        ],
    )


@pytest.fixture(scope="module")
def ingress_lab(lab) -> Iterator[str]:
    """The ingress controller stand-in on the node (10.77.2.68:80), an HTTP backend in
    mysql-0, the Ingress hosts in the client's hosts file, and the API server; yield the
    kubeconfig."""
    hosts = Path(lab.client_resolv_conf).parent / "hosts"
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="k8sreach-lab-ingress-") as tmp:
        routes = Path(tmp) / "routes.json"
        backend = f"{lab.pod_ip}:{WEB_PORT}"
        routes.write_text(
            json.dumps(
                [
                    {
                        "host": "shop.example.test",
                        "path": "/app",
                        "pathType": "Prefix",
                        "backends": [backend],
                    },
                    {
                        "host": "empty.example.test",
                        "path": "/",
                        "pathType": "Prefix",
                        "backends": [],
                    },
                ]
            )
        )
        try:
            procs.append(
                _spawn(
                    _in_netns(
                        lab,
                        lab.pod_name,
                        [
                            sys.executable,
                            str(_STANDIN),
                            "backend",
                            "--listen",
                            backend,
                            "--name",
                            "web",
                        ],
                    ),
                    "the HTTP backend stand-in",
                )
            )
            procs.append(
                _spawn(
                    _in_netns(
                        lab,
                        "node",
                        [
                            sys.executable,
                            str(_STANDIN),
                            "controller",
                            "--listen",
                            f"{lab.node_ip}:80",
                            "--routes",
                            str(routes),
                        ],
                    ),
                    "the ingress controller stand-in",
                )
            )
            # ip netns exec shows the client this file as /etc/hosts: the system resolver
            hosts.write_text(
                f"127.0.0.1 localhost\n::1 localhost\n{lab.node_ip} {' '.join(INGRESS_HOSTS)}\n"
            )
            with api_server(lab, _ingress_objects(lab)) as config:
                yield config
        finally:
            hosts.unlink(missing_ok=True)
            for proc in procs:
                _stop(proc)


def _ingress_doctor(lab: Any, *args: str) -> Run:
    argv = lab.client_argv(
        [sys.executable, "-m", "k8sreach", "doctor", *args, "--timeout", "2", "-o", "json"]
    )
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    doc = json.loads(done.stdout) if done.returncode in (0, 1) else {}
    return Run(done.returncode, doc, done.stdout, done.stderr, time.monotonic() - started)


def test_ingress_with_a_matching_host_reaches_the_backend(lab, ingress_lab):
    run = _ingress_doctor(lab, "http://shop.example.test/app/cart", "--kubeconfig", ingress_lab)

    assert run.code == 0, run.stdout + run.stderr
    assert [c["id"] for c in run.doc["checks"]] == ["ingress-http"]
    row = run.check("ingress-http")
    assert row["summary"].startswith(
        f"GET http://shop.example.test/app/cart -> 200 OK via {lab.node_ip}:80 in "
    )
    assert row["summary"].endswith(
        " ms (rule shop.example.test/app (Prefix) of default/shop -> web:http)"
    )
    evidence = row["evidence"]
    assert evidence["request"]["host_header"] == "shop.example.test"
    assert evidence["request"]["address_from"] == "the Ingress's status.loadBalancer"
    assert evidence["resolution"]["addresses"] == [lab.node_ip]
    assert evidence["response"]["body_head"] == "web: hello from /app/cart"
    assert evidence["api"]["backend"]["ready"] == [f"{lab.pod_ip}:{WEB_PORT}"]
    assert run.doc["reachable"] is True


def test_ingress_with_a_host_no_rule_matches_says_so(lab, ingress_lab):
    run = _ingress_doctor(lab, "http://other.example.test/", "--kubeconfig", ingress_lab)

    assert run.code == 1
    row = run.check("ingress-http")
    assert row["summary"] == (
        "no rule matches other.example.test/: no Ingress rule in any namespace covers it; the "
        f"controller at {lab.node_ip}:80 answered its default backend (404 Not Found)"
    )
    assert row["evidence"]["request"]["address_from"] == "DNS"
    assert row["evidence"]["response"]["status"] == 404


def test_ingress_whose_backend_has_no_endpoints_is_told_apart(lab, ingress_lab):
    run = _ingress_doctor(lab, "http://empty.example.test/", "--kubeconfig", ingress_lab)

    assert run.check("ingress-http")["summary"] == (
        "backend Service default/web-empty has no endpoints (none at all): the controller at "
        f"{lab.node_ip}:80 answered 503 Service Temporarily Unavailable (rule "
        "empty.example.test/ (Prefix) of default/empty -> web-empty:80)"
    )


def test_ingress_by_name_requests_its_first_rule(lab, ingress_lab):
    run = _ingress_doctor(lab, "--ingress", "shop", "-n", "default", "--kubeconfig", ingress_lab)

    assert run.code == 0, run.stdout + run.stderr
    assert run.doc["target"]["ingress"] == "shop"
    row = run.check("ingress-http")
    assert row["evidence"]["request"]["url"] == "http://shop.example.test/app"
    assert row["evidence"]["api"]["scope"] == "Ingress default/shop"
