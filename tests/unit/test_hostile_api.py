"""A hostile or malformed API answer is input, not a crash: the cluster checks fail or skip
with one line, within about one timeout. Every server here listens on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from checks.endpoints_ready import from_endpoints, from_slices
from checks.ingress_http import (
    ApiLookup,
    HttpOutcome,
    HttpRequest,
    classify,
    http_get,
    match_rule,
    url_of,
)
from checks.service_exists import judge
from k8sreach import check as facts
from k8sreach.cluster import ClusterAccess, ClusterError, kubeconfig_paths
from k8sreach.result import Status
from k8sreach.target import parse_target, split_url
from k8sreach.testing.kubeapi import FakeApiServer

TARGET = parse_target("web.default")


def _svc(spec: object, status: object = None, metadata: object = None) -> dict:
    obj: dict = {"kind": "Service", "spec": spec}
    obj["metadata"] = {"name": "web", "namespace": "default"} if metadata is None else metadata
    if status is not None:
        obj["status"] = status
    return obj


# -- service-exists -------------------------------------------------------------------------


def test_ports_given_as_a_string_fail_as_a_malformed_service():
    finding = judge(_svc({"ports": "80", "clusterIP": "10.0.0.5"}), TARGET)
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "the API returned a malformed Service default/web: spec.ports is a string"
    )
    assert facts.PORT not in finding.facts


def test_spec_that_is_a_string_fails_as_a_malformed_service():
    finding = judge({"kind": "Service", "metadata": None, "spec": "x", "status": 7}, TARGET)
    assert finding.status is Status.FAIL
    assert finding.summary == "the API returned a malformed Service default/web: spec is a string"


def test_non_numeric_port_is_never_published_as_the_port_fact():
    finding = judge(_svc({"ports": [{"port": "eighty", "name": 5}]}), TARGET)
    assert finding.status is Status.FAIL
    assert finding.summary.startswith(
        "the API returned a malformed Service default/web: spec.ports has no usable entry"
    )
    assert facts.PORT not in finding.facts


def test_port_entries_that_are_null_numbers_or_portless_fail_without_a_port_fact():
    finding = judge(_svc({"ports": [None, 5, {"port": None}], "clusterIP": "10.0.0.5"}), TARGET)
    assert finding.status is Status.FAIL
    assert "spec.ports has no usable entry" in finding.summary
    assert facts.PORT not in finding.facts


def test_bad_port_entries_are_dropped_and_the_good_one_is_probed():
    spec = {"ports": [None, {"port": 80, "name": 5}], "clusterIP": "10.0.0.5"}
    finding = judge(_svc(spec), TARGET)
    assert finding.status is Status.WARN
    assert finding.facts[facts.PORT] == 80
    assert finding.facts[facts.ADDRESS] == "10.0.0.5"
    assert finding.evidence["malformed_parts_ignored"] == [
        "spec.ports[0] is null, not a port entry: ignored",
        "spec.ports[1].name is a number, not a string: dropped",
    ]


def test_list_selector_and_numeric_cluster_ip_are_ignored_with_notes():
    finding = judge(_svc({"selector": ["a"], "clusterIP": 12345, "ports": [{"port": 80}]}), TARGET)
    assert finding.status is Status.WARN
    assert finding.summary.startswith(
        "default/web: ClusterIP without an address, no selector (endpoints written by hand)"
    )
    assert facts.ADDRESS not in finding.facts
    assert finding.evidence["malformed_parts_ignored"] == [
        "spec.selector is a list of other than strings: ignored",
        "spec.clusterIP is 12345, not an IP address: ignored",
    ]


def test_garbage_load_balancer_entries_are_dropped():
    status = {"loadBalancer": {"ingress": [{"ip": "garbage"}, {"hostname": None}, "str"]}}
    spec = {"type": "LoadBalancer", "clusterIP": "10.0.0.5", "ports": [{"port": 80}]}
    finding = judge(_svc(spec, status), TARGET)
    assert finding.status is Status.WARN
    assert finding.evidence["load_balancer"] == []
    assert len(finding.evidence["malformed_parts_ignored"]) == 3
    assert finding.facts[facts.PORT] == 80


def test_service_without_spec_says_it_has_no_cluster_ip_address():
    finding = judge({"metadata": {"name": "web", "namespace": "default"}}, TARGET)
    assert finding.summary == "default/web: ClusterIP without an address, no selector " + (
        "(endpoints written by hand), no ports; the Service declares no ports"
    )


# -- endpoints-ready ------------------------------------------------------------------------


def test_slice_addresses_that_are_not_ips_are_dropped_with_notes():
    notes: list[str] = []
    slices = [
        {
            "metadata": {"name": "web-abc"},
            "ports": [{"name": "", "port": 80}, {"port": "x"}],
            "endpoints": [{"addresses": ["not-an-ip", 7, None, "127.0.0.5"]}, "junk"],
        }
    ]
    endpoints = from_slices(slices, notes)
    assert [ep.ip for ep in endpoints] == ["127.0.0.5"]
    assert endpoints[0].ports == (("", 80, "TCP"),)
    assert notes == [
        "EndpointSlice web-abc.ports[1].port is 'x', not a port 1-65535: ignored",
        "EndpointSlice web-abc.endpoints[0].addresses holds 'not-an-ip', not an IP address: "
        "ignored",
        "EndpointSlice web-abc.endpoints[0].addresses holds 7, not an IP address: ignored",
        "EndpointSlice web-abc.endpoints[0].addresses holds null, not an IP address: ignored",
        "EndpointSlice web-abc.endpoints[1] is a string: ignored",
    ]


def test_endpoints_object_with_non_ip_addresses_keeps_only_the_ips():
    notes: list[str] = []
    obj = {"subsets": [{"addresses": [{"ip": "bogus"}, {"ip": "127.0.0.6"}], "ports": "80"}]}
    assert [ep.ip for ep in from_endpoints(obj, notes)] == ["127.0.0.6"]
    assert len(notes) == 2


# -- ingress-http: the rules ----------------------------------------------------------------

GOOD = {
    "metadata": {"name": "shop", "namespace": "default"},
    "spec": {
        "rules": [
            {
                "host": "shop.example.test",
                "http": {
                    "paths": [
                        {
                            "path": "/exact",
                            "pathType": "Exact",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        },
                        {
                            "path": "/bogus",
                            "pathType": "Bogus",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        },
                    ]
                },
            }
        ]
    },
}
BAD = [
    {"metadata": {"name": "a", "namespace": "x"}, "spec": {"rules": "nope"}},
    {"metadata": {"name": "b", "namespace": "x"}, "spec": {"rules": ["str", None]}},
    {"metadata": None, "spec": "x"},
    "junk",
]


def test_malformed_ingresses_are_skipped_and_the_good_rule_still_matches():
    notes: list[str] = []
    match = match_rule([*BAD, GOOD], "shop.example.test", "/exact", notes)  # type: ignore[list-item]
    assert match is not None
    assert match.describe() == "rule shop.example.test/exact (Exact) of default/shop -> web:80"
    assert notes[:4] == [
        "Ingress x/a: spec.rules is a string, not a list: ignored",
        "Ingress x/b: 2 rule(s) not objects: ignored",
        "Ingress #2: spec is a string: ignored",
        "Ingress #3 is a string, not an object: ignored",
    ]


def test_url_of_a_malformed_ingress_is_none():
    assert url_of(BAD[0]) is None
    assert url_of(BAD[1]) is None
    assert url_of({"spec": {"rules": [{"host": 5, "http": {"paths": "x"}}]}}) is None


def test_unknown_path_type_is_not_taken_as_prefix():
    notes: list[str] = []
    assert match_rule([GOOD], "shop.example.test", "/bogus/x", notes) is None
    assert notes == ["Ingress default/shop: path /bogus has the unknown pathType 'Bogus': ignored"]


def test_no_matching_rule_is_the_verdict_even_when_the_controller_answers_503():
    request = HttpRequest(split_url("http://shop.example.test/exact/"), "127.0.0.1", "DNS")
    lookup = ApiLookup(True, "any namespace", ingresses=(GOOD,), match=None)
    outcome = HttpOutcome("response", 3.0, status=503, reason="Service Unavailable")
    finding = classify(request, outcome, lookup)
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "no rule matches shop.example.test/exact/ (host shop.example.test has rules, none for "
        "this path): no Ingress rule in any namespace covers it; 127.0.0.1:80 answered 503 "
        "Service Unavailable"
    )
    assert finding.evidence["controller_answered"] == "503 Service Unavailable"


# -- slow servers: a total deadline ---------------------------------------------------------


class _RawServer:
    """A loopback TCP server running `serve(conn)` for each connection, in daemon threads."""

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self._serve(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"
    )
    while not stop.wait(0.3):
        conn.sendall(b" ")


def _endless_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    n = 0
    while not stop.wait(0.1):
        n += 1
        conn.sendall(f"X-Slow-{n}: {n}\r\n".encode())


def _huge_body(conn: socket.socket, stop: threading.Event) -> None:
    size = 2 * 1024**3
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b'{"a":"')
    chunk = b"x" * 65536
    while not stop.is_set():
        conn.sendall(chunk)


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[_RawServer]:
    server = _RawServer(request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _access(raw: _RawServer, tmp_path: Path, timeout: float) -> ClusterAccess:
    with FakeApiServer() as api:
        path = api.write_kubeconfig(tmp_path / "config", server=f"http://127.0.0.1:{raw.port}")
    return ClusterAccess.from_kubeconfig(str(path), timeout=timeout)


@pytest.mark.parametrize("raw_server", [_trickle_body, _endless_headers], indirect=True)
def test_a_trickling_api_server_costs_one_timeout(raw_server: _RawServer, tmp_path: Path):
    with _access(raw_server, tmp_path, 0.5) as access:
        started = time.monotonic()
        with pytest.raises(ClusterError) as caught:
            access.get_service("default", "web")
        elapsed = time.monotonic() - started
    assert caught.value.kind == "timeout"
    assert str(caught.value) == (
        f"the API server at http://127.0.0.1:{raw_server.port} did not answer within 0.5 s "
        '(get services "web" in namespace default)'
    )
    assert elapsed < 1.0


@pytest.mark.parametrize("raw_server", [_huge_body], indirect=True)
def test_a_huge_answer_is_cut_at_8_mb(raw_server: _RawServer, tmp_path: Path):
    with _access(raw_server, tmp_path, 5.0) as access:
        with pytest.raises(ClusterError) as caught:
            access.get_service("default", "web")
    assert caught.value.kind == "other"
    assert str(caught.value) == (
        f'the API server at http://127.0.0.1:{raw_server.port} answered get services "web" '
        "in namespace default with more than 8 MB; k8sreach reads no more"
    )


@pytest.mark.parametrize("raw_server", [_endless_headers], indirect=True)
def test_a_controller_that_never_finishes_its_headers_fails_within_the_timeout(
    raw_server: _RawServer,
):
    request = HttpRequest(
        split_url(f"http://shop.example.test:{raw_server.port}/"), "127.0.0.1", "DNS"
    )
    started = time.monotonic()
    outcome = http_get(request, 0.5)
    assert time.monotonic() - started < 1.0
    assert outcome.kind == "incomplete"
    finding = classify(request, outcome, ApiLookup(False, problem="no kubeconfig"), None, 0.5)
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"the controller at 127.0.0.1:{raw_server.port} sent no complete response within "
        "0.5 s (it started answering, then stalled)"
    )


# -- kubeconfig -----------------------------------------------------------------------------


def test_a_directory_as_kubeconfig_says_it_is_a_directory(tmp_path: Path):
    with pytest.raises(ClusterError) as caught:
        kubeconfig_paths(tmp_path)
    assert str(caught.value) == f"kubeconfig {tmp_path} is a directory, not a kubeconfig file"
