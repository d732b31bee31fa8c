"""ClusterAccess against FakeApiServer, through the real kubernetes client and a kubeconfig."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8sreach.cluster import (
    ClusterAccess,
    ClusterError,
    RedactingFilter,
    kubeconfig_paths,
    redact,
)
from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import Backend, FakeApiServer, object_uid

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _objects() -> list[dict]:
    backends = [
        Backend("10.244.1.5", pod="mysql-0", node="node-1"),
        Backend("10.244.2.6", pod="mysql-1", node="node-2", ready=False),
    ]
    return [
        kubeapi.service(
            "mysql-read",
            cluster_ip="10.96.0.12",
            selector={"app": "mysql"},
            ports=[kubeapi.service_port(3306, name="mysql")],
        ),
        kubeapi.service(
            "web",
            cluster_ip="10.96.0.20",
            type="NodePort",
            selector={"app": "web"},
            ports=[kubeapi.service_port(80, target_port=8080)],
            node_ports={80: 30080},
        ),
        kubeapi.endpoints("mysql-read", backends=backends, ports=[{"name": "mysql", "port": 3306}]),
        kubeapi.endpoint_slice(
            "mysql-read", backends=backends, ports=[{"name": "mysql", "port": 3306}]
        ),
        kubeapi.endpoint_slice("web"),
        kubeapi.pod(
            "mysql-0",
            ip="10.244.1.5",
            node="node-1",
            ports=[3306],
            labels={"app": "mysql", "role": "primary"},
        ),
        kubeapi.pod(
            "mysql-1",
            ip="10.244.2.6",
            node="node-2",
            ready=False,
            labels={"app": "mysql", "role": "replica"},
        ),
        kubeapi.pod("web-0", ip="10.244.1.9", labels={"app": "web"}),
        kubeapi.node("node-1", internal_ip="192.168.50.11", pod_cidr="10.244.1.0/24"),
        kubeapi.node("node-2", internal_ip="192.168.50.12", ready=False),
        kubeapi.ingress(
            "shop",
            host="shop.example.com",
            service="web",
            port=80,
            load_balancer_ips=["192.168.50.200"],
        ),
        kubeapi.ingress("admin", "tools", host="admin.example.com", service="admin", port="http"),
        kubeapi.calico_node_status(
            "node-1",
            peers=[
                kubeapi.bgp_peer("192.168.50.12"),
                kubeapi.bgp_peer("192.168.50.13", type="GlobalPeer", state="Active"),
            ],
        ),
    ]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client honours proxy variables; these tests talk to loopback only.
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(_objects()) as running:
        yield running


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[FakeApiServer]:
    server.clear_requests()
    yield server
    server.allow_all()
    server.clear_failures()
    server.credentials_expired = False
    server.response_delay = 0.0


@pytest.fixture
def access(api: FakeApiServer, tmp_path: Path) -> Iterator[ClusterAccess]:
    path = api.write_kubeconfig(tmp_path / "config")
    with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as opened:
        yield opened


def _raw_get(server: FakeApiServer, path: str, token: str | None = None) -> tuple[int, dict]:
    context = ssl.create_default_context(cadata=server.ca_pem.decode())
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"Bearer {token or server.token}"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- reading objects -------------------------------------------------------------------------


def test_get_service_returns_the_api_object_with_camel_case_fields(access: ClusterAccess):
    svc = access.get_service("default", "mysql-read")

    assert svc["kind"] == "Service"
    assert svc["apiVersion"] == "v1"
    assert svc["metadata"]["uid"] == object_uid("Service", "default", "mysql-read")
    assert svc["spec"]["clusterIP"] == "10.96.0.12"
    assert svc["spec"]["ports"] == [
        {"name": "mysql", "protocol": "TCP", "port": 3306, "targetPort": 3306}
    ]
    assert svc["status"] == {"loadBalancer": {}}


def test_list_services_returns_items_without_kind(access: ClusterAccess):
    items = access.list_services("default")

    assert [s["metadata"]["name"] for s in items] == ["mysql-read", "web"]
    assert "kind" not in items[0]
    assert items[1]["spec"]["ports"][0]["nodePort"] == 30080


def test_get_endpoints_splits_ready_and_not_ready_addresses(access: ClusterAccess):
    subset = access.get_endpoints("default", "mysql-read")["subsets"][0]

    assert subset["addresses"] == [
        {
            "ip": "10.244.1.5",
            "nodeName": "node-1",
            "targetRef": {
                "kind": "Pod",
                "namespace": "default",
                "name": "mysql-0",
                "uid": object_uid("Pod", "default", "mysql-0"),
            },
        }
    ]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.2.6"]
    assert subset["ports"] == [{"name": "mysql", "port": 3306, "protocol": "TCP"}]


def test_list_endpoint_slices_selects_the_service_by_label(
    access: ClusterAccess, api: FakeApiServer
):
    slices = access.list_endpoint_slices("default", "mysql-read")

    assert len(slices) == 1
    assert slices[0]["addressType"] == "IPv4"
    assert [e["conditions"] for e in slices[0]["endpoints"]] == [
        {"ready": True, "serving": True, "terminating": False},
        {"ready": False, "serving": False, "terminating": False},
    ]
    assert api.requests[-1].query == {"labelSelector": "kubernetes.io/service-name=mysql-read"}


def test_endpoint_slice_without_backends_has_null_endpoints(access: ClusterAccess):
    (empty,) = access.list_endpoint_slices("default", "web")

    assert empty["endpoints"] is None
    assert empty["ports"] is None


def test_list_pods_returns_only_pods_matching_every_label(
    access: ClusterAccess, api: FakeApiServer
):
    pods = access.list_pods("default", {"role": "replica", "app": "mysql"})

    assert [p["metadata"]["name"] for p in pods] == ["mysql-1"]
    ready = [c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "False"
    assert api.requests[-1].query == {"labelSelector": "app=mysql,role=replica"}


def test_list_pods_with_empty_selector_returns_every_pod(access: ClusterAccess):
    names = [p["metadata"]["name"] for p in access.list_pods("default", {})]

    assert names == ["mysql-0", "mysql-1", "web-0"]


def test_list_nodes_and_get_node(access: ClusterAccess):
    nodes = access.list_nodes()
    node = access.get_node("node-1")

    assert [n["metadata"]["name"] for n in nodes] == ["node-1", "node-2"]
    assert node["status"]["addresses"] == [
        {"type": "InternalIP", "address": "192.168.50.11"},
        {"type": "Hostname", "address": "node-1"},
    ]
    assert node["spec"]["podCIDR"] == "10.244.1.0/24"


def test_get_ingress_and_list_ingresses_of_all_namespaces(access: ClusterAccess):
    shop = access.get_ingress("default", "shop")
    everywhere = access.list_ingresses()

    assert shop["spec"]["rules"] == [
        {
            "host": "shop.example.com",
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}},
                    }
                ]
            },
        }
    ]
    assert shop["status"]["loadBalancer"] == {"ingress": [{"ip": "192.168.50.200"}]}
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere] == [
        ("default", "shop"),
        ("tools", "admin"),
    ]
    assert [i["metadata"]["name"] for i in access.list_ingresses("tools")] == ["admin"]


def test_list_calico_node_statuses_reads_the_crd(access: ClusterAccess, api: FakeApiServer):
    (status,) = access.list_calico_node_statuses()

    assert status["apiVersion"] == "crd.projectcalico.org/v1"
    assert status["status"]["bgp"]["numberEstablishedV4"] == 1
    assert status["status"]["bgp"]["peersV4"][1] == {
        "peerIP": "192.168.50.13",
        "type": "GlobalPeer",
        "state": "Active",
        "since": "09:30:04",
    }
    assert api.requests[-1].path == "/apis/crd.projectcalico.org/v1/caliconodestatuses"


def test_calico_node_statuses_fall_back_to_the_calico_api_server(tmp_path: Path):
    objects = [kubeapi.calico_node_status("node-1")]
    with FakeApiServer(objects, calico_api=(kubeapi.CALICO_V3,)) as api:
        path = api.write_kubeconfig(tmp_path / "config")
        with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
            (status,) = access.list_calico_node_statuses()
            access.list_calico_node_statuses()

        assert "kind" not in status  # a typed aggregated API, unlike the CRD, drops it
        assert status["spec"]["node"] == "node-1"
        assert [r.path for r in api.requests] == [
            "/apis/crd.projectcalico.org/v1/caliconodestatuses",
            "/apis/projectcalico.org/v3/caliconodestatuses",
            "/apis/projectcalico.org/v3/caliconodestatuses",
        ]


def test_calico_not_installed_is_notfound(tmp_path: Path):
    with FakeApiServer(calico_api=()) as api:
        path = api.write_kubeconfig(tmp_path / "config")
        with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
            with pytest.raises(ClusterError) as caught:
                access.list_calico_node_statuses()

    assert caught.value.kind == "notfound"
    assert str(caught.value) == (
        f"the API server at {api.url} serves no CalicoNodeStatus (neither "
        "crd.projectcalico.org/v1 nor projectcalico.org/v3): Calico is not installed, or keeps "
        "its data elsewhere (etcd)"
    )


def test_typed_kubernetes_models_accept_the_fake_objects(access: ClusterAccess):
    from kubernetes import client

    # the generated models validate field names and types while they deserialize
    core = client.CoreV1Api(access._api)
    networking = client.NetworkingV1Api(access._api)
    svc = core.read_namespaced_service("mysql-read", "default", _request_timeout=2).to_dict()
    pods = core.list_namespaced_pod("default", label_selector="app=web", _request_timeout=2)
    nodes = core.list_node(_request_timeout=2).to_dict()
    ing = networking.read_namespaced_ingress("shop", "default", _request_timeout=2).to_dict()

    assert svc["spec"]["cluster_ip"] == "10.96.0.12"
    assert [p["status"]["pod_ip"] for p in pods.to_dict()["items"]] == ["10.244.1.9"]
    assert nodes["items"][0]["status"]["addresses"][0]["address"] == "192.168.50.11"
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["port"]["number"] == 80


# -- errors ----------------------------------------------------------------------------------


def test_missing_service_is_notfound_with_the_status_message(access: ClusterAccess):
    with pytest.raises(ClusterError) as caught:
        access.get_service("default", "nope")

    error = caught.value
    assert (error.kind, error.code) == ("notfound", 404)
    assert str(error) == 'services "nope" not found in namespace default'
    assert error.server_message == 'services "nope" not found'
    assert (error.verb, error.resource, error.namespace, error.name) == (
        "get",
        "services",
        "default",
        "nope",
    )


def test_missing_ingress_names_its_api_group(access: ClusterAccess):
    with pytest.raises(ClusterError) as caught:
        access.get_ingress("default", "gone")

    assert str(caught.value) == (
        'ingresses.networking.k8s.io "gone" not found in namespace default'
    )


def test_expired_credentials_are_unauthorized(access: ClusterAccess, api: FakeApiServer):
    api.credentials_expired = True

    with pytest.raises(ClusterError) as caught:
        access.list_services("default")

    assert (caught.value.kind, caught.value.code) == ("unauthorized", 401)
    assert str(caught.value) == (
        f'the API server at {api.url} refused the credentials of user "lab-user" of context '
        '"lab" (401 Unauthorized): they may have expired; renew them (log in again, or get a '
        "fresh token or certificate) and retry"
    )


def test_wrong_token_is_unauthorized(api: FakeApiServer, tmp_path: Path):
    path = api.write_kubeconfig(tmp_path / "config", token="not-the-token")

    with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
        with pytest.raises(ClusterError) as caught:
            access.list_nodes()

    assert caught.value.kind == "unauthorized"
    assert api.requests[-1].user is None


def test_forbidden_list_names_verb_resource_and_namespace(
    access: ClusterAccess, api: FakeApiServer
):
    api.forbid("list", "services", "default")

    with pytest.raises(ClusterError) as caught:
        access.list_services("default")

    error = caught.value
    assert (error.kind, error.verb, error.resource, error.namespace, error.code) == (
        "forbidden",
        "list",
        "services",
        "default",
        403,
    )
    assert str(error) == (
        "not allowed to list services in namespace default (403 Forbidden): services is "
        'forbidden: User "system:serviceaccount:default:k8sreach" cannot list resource '
        '"services" in API group "" in the namespace "default"'
    )
    assert access.list_services("kube-system") == []


def test_forbidden_nodes_is_reported_at_cluster_scope(access: ClusterAccess, api: FakeApiServer):
    api.forbid("list", "nodes")

    with pytest.raises(ClusterError) as caught:
        access.list_nodes()

    assert str(caught.value) == (
        "not allowed to list nodes (403 Forbidden): nodes is forbidden: User "
        '"system:serviceaccount:default:k8sreach" cannot list resource "nodes" in API group "" '
        "at the cluster scope"
    )


def test_server_error_is_other_with_the_server_message(access: ClusterAccess, api: FakeApiServer):
    api.fail(500, "etcdserver: request timed out", "/api/v1/namespaces/default/services")

    with pytest.raises(ClusterError) as caught:
        access.list_services("default")

    assert (caught.value.kind, caught.value.code) == ("other", 500)
    assert str(caught.value) == (
        f"the API server at {api.url} answered 500 InternalError to list services in namespace "
        "default: etcdserver: request timed out"
    )


def test_untrusted_server_certificate_is_a_tls_error(api: FakeApiServer, tmp_path: Path):
    with FakeApiServer() as other:
        path = kubeapi.write_kubeconfig(
            tmp_path / "config", server=api.url, ca_pem=other.ca_pem, token=api.token
        )
    with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
        with pytest.raises(ClusterError) as caught:
            access.list_nodes()

    assert caught.value.kind == "other"
    assert str(caught.value).startswith(f"TLS with the API server at {api.url} failed: ")
    assert "certificate verify failed" in str(caught.value)
    assert str(caught.value).endswith("check the cluster's certificate-authority in the kubeconfig")


def test_client_certificate_logs_in_as_its_common_name(api: FakeApiServer, tmp_path: Path):
    path = api.write_kubeconfig(tmp_path / "config", client_cert=True, cert_user="alice")

    with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
        access.list_services("default")

    assert api.requests[-1].user == "alice"


# -- unreachable, bounded --------------------------------------------------------------------


def _timed(access: ClusterAccess) -> tuple[ClusterError, float]:
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        access.list_nodes()
    return caught.value, time.monotonic() - started


def test_closed_port_is_unreachable_at_once(api: FakeApiServer, tmp_path: Path):
    server = f"https://127.0.0.1:{_unused_port()}"
    path = api.write_kubeconfig(tmp_path / "config", server=server)

    with ClusterAccess.from_kubeconfig(str(path), timeout=2.0) as access:
        error, elapsed = _timed(access)

    assert error.kind == "unreachable"
    assert str(error) == f"cannot reach the API server at {server}: connection refused (list nodes)"
    assert elapsed < 0.5


def test_silent_listener_costs_one_timeout_not_four(api: FakeApiServer, tmp_path: Path):
    with socket.socket() as tarpit:  # completes TCP connections, never speaks TLS
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(8)
        server = f"https://127.0.0.1:{tarpit.getsockname()[1]}"
        path = api.write_kubeconfig(tmp_path / "config", server=server)
        with ClusterAccess.from_kubeconfig(str(path), timeout=0.4) as access:
            error, elapsed = _timed(access)

    assert error.kind == "timeout"
    assert str(error) == f"the API server at {server} did not answer within 0.4 s (list nodes)"
    assert 0.35 < elapsed < 0.9


def test_listener_dropping_connections_is_unreachable_within_the_timeout(
    api: FakeApiServer, tmp_path: Path
):
    # A listener whose accept queue is full drops new SYNs, as a firewall would.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                try:
                    filler.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            else:
                pytest.skip("this kernel does not drop SYNs to a full accept queue")
            server = f"https://127.0.0.1:{port}"
            path = api.write_kubeconfig(tmp_path / "config", server=server)
            with ClusterAccess.from_kubeconfig(str(path), timeout=0.4) as access:
                error, elapsed = _timed(access)
        finally:
            for filler in fillers:
                filler.close()

    assert error.kind == "unreachable"
    assert str(error) == (
        f"cannot reach the API server at {server}: no connection within 0.4 s (list nodes)"
    )
    assert 0.35 < elapsed < 0.9


def test_slow_api_server_times_out(access: ClusterAccess, api: FakeApiServer, tmp_path: Path):
    api.response_delay = 1.0
    path = api.write_kubeconfig(tmp_path / "slow")

    with ClusterAccess.from_kubeconfig(str(path), timeout=0.3) as slow:
        error, elapsed = _timed(slow)

    assert error.kind == "timeout"
    assert elapsed < 0.8


# -- kubeconfig resolution -------------------------------------------------------------------


def test_explicit_missing_kubeconfig_is_a_config_error(tmp_path: Path):
    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig(str(tmp_path / "absent"))

    assert caught.value.kind == "config"
    assert str(caught.value) == f"kubeconfig {tmp_path / 'absent'} does not exist"


def test_kubeconfig_list_is_merged_and_the_first_current_context_wins(
    api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    first = api.write_kubeconfig(tmp_path / "first", context="first")
    second = api.write_kubeconfig(tmp_path / "second", context="second", namespace="shop")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{first}:{second}")

    with ClusterAccess.from_kubeconfig(None, timeout=2.0) as access:
        assert (access.context, access.namespace) == ("first", "default")
        assert access.list_services("default")
    with ClusterAccess.from_kubeconfig(None, context="second", timeout=2.0) as access:
        assert (access.context, access.namespace) == ("second", "shop")
        assert access.list_services("default")


def test_kubeconfig_list_with_no_existing_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig()

    assert str(caught.value) == (
        f"none of the kubeconfig files in KUBECONFIG exist: {tmp_path / 'a'}, {tmp_path / 'b'}"
    )


def test_home_kubeconfig_is_the_last_resort(
    api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    api.write_kubeconfig(tmp_path / ".kube" / "config")

    assert kubeconfig_paths() == [tmp_path / ".kube" / "config"]
    with ClusterAccess.from_kubeconfig() as access:
        assert access.server == api.url


def test_no_kubeconfig_anywhere_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig()

    assert str(caught.value) == (
        f"no kubeconfig: {tmp_path}/.kube/config does not exist and KUBECONFIG is not set; "
        "pass --kubeconfig"
    )


def test_malformed_kubeconfig_is_reported_without_its_content(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text("users:\n- name: u\n  user: {token: s3cr3t-t0ken: oops}\n")

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig(str(path))

    assert caught.value.kind == "config"
    assert str(caught.value) == (
        f"kubeconfig {path} is not valid YAML at line 3: expected ',' or '}}', but got ':'"
    )
    assert "s3cr3t" not in str(caught.value)


_CONTEXT = "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "clusters: 5\n",
            "is malformed: clusters must be a list of entries, each with a name "
            "and a cluster mapping",
        ),
        ("clusters:\n- name: c\n  cluster: {}\n" + _CONTEXT, "has no server"),
        (_CONTEXT, "does not define"),
        ("- a\n", "is not a kubeconfig (no mapping at its top level)"),
        ("", "is empty"),
    ],
)
def test_malformed_kubeconfig_structure_is_a_config_error(
    content: str, problem: str, tmp_path: Path
):
    path = tmp_path / "config"
    path.write_text(content)

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig(str(path))

    assert caught.value.kind == "config"
    assert str(caught.value).endswith(problem)
    assert str(path) in str(caught.value)


def test_undecodable_certificate_data_is_a_config_error_without_the_token(tmp_path: Path):
    path = tmp_path / "config"
    path.write_text(
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', "
        "certificate-authority-data: 'abcdef'}\nusers:\n- name: u\n  user: "
        "{token: supersecret123}\n" + _CONTEXT
    )

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig(str(path))

    assert str(caught.value) == (
        f"cannot use kubeconfig {path}: bad base64 data (Incorrect padding)"
    )
    assert "supersecret123" not in repr(caught.value)


def test_unknown_context_lists_the_known_ones(api: FakeApiServer, tmp_path: Path):
    path = api.write_kubeconfig(tmp_path / "config", context="lab")

    with pytest.raises(ClusterError) as caught:
        ClusterAccess.from_kubeconfig(str(path), context="prod")

    assert str(caught.value) == f'context "prod" is not in kubeconfig {path} (contexts: lab)'


# -- secrets ---------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


def test_credentials_never_reach_logs_errors_or_repr(api: FakeApiServer, tmp_path: Path):
    token_path = api.write_kubeconfig(tmp_path / "token")
    cert_path = api.write_kubeconfig(tmp_path / "cert", client_cert=True)
    key_data = cert_path.read_text().split("client-key-data: ")[1].split()[0]
    capture = _Capture()
    capture.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    seen: list[str] = []
    try:
        for path in (token_path, cert_path):
            with ClusterAccess.from_kubeconfig(str(path), timeout=1.0) as access:
                logging.getLogger("urllib3").setLevel(logging.DEBUG)
                seen.append(repr(access))
                access.list_services("default")
                api.forbid("get", "services")
                api.fail(503, "apiserver is shutting down", "/api/v1/nodes")
                for attempt in (
                    lambda: access.get_service("default", "mysql-read"),
                    lambda: access.list_nodes(),
                    lambda: access.get_endpoints("default", "nope"),
                ):
                    with pytest.raises(ClusterError) as caught:
                        attempt()
                    seen += [str(caught.value), repr(caught.value)]
                api.credentials_expired = True
                with pytest.raises(ClusterError) as caught:
                    access.list_pods("default", {"app": "mysql"})
                seen.append(str(caught.value))
                api.allow_all()
                api.clear_failures()
                api.credentials_expired = False
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        logging.getLogger("urllib3").setLevel(logging.NOTSET)

    assert any("GET /api/v1/namespaces/default/services" in t for t in capture.texts)
    everything = "\n".join(capture.texts + seen)
    assert api.token not in everything
    assert key_data not in everything
    assert key_data[:40] not in everything


def test_access_knows_its_secrets_for_the_debug_filter(api: FakeApiServer, tmp_path: Path):
    path = api.write_kubeconfig(tmp_path / "config")

    with ClusterAccess.from_kubeconfig(str(path)) as access:
        assert api.token in access.secrets
        assert access.redact(f"Authorization: Bearer {api.token}") == (
            "Authorization: Bearer [REDACTED]"
        )
        assert api.token not in repr(access)


def test_redact_replaces_every_secret_longest_first():
    assert redact("token abcdef and abcdefgh, key xyz", ["abcdef", "abcdefgh", "xyz"]) == (
        "token [REDACTED] and [REDACTED], key xyz"
    )


def test_redacting_filter_rewrites_messages_and_tracebacks():
    record = logging.LogRecord(
        "k8sreach", logging.DEBUG, __file__, 1, "sent %s", ("hunter22",), None
    )
    try:
        raise RuntimeError("token hunter22 rejected")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()

    assert RedactingFilter(["hunter22"]).filter(record) is True
    assert record.getMessage() == "sent [REDACTED]"
    assert "hunter22" not in (record.exc_text or "")
    assert "token [REDACTED] rejected" in (record.exc_text or "")


# -- the fake server itself ------------------------------------------------------------------


def test_fake_lists_match_set_based_selectors(server: FakeApiServer):
    code, body = _raw_get(
        server, "/api/v1/namespaces/default/pods?labelSelector=app%20in%20(mysql,web),role!=primary"
    )

    assert code == 200
    assert body["kind"] == "PodList"
    assert body["metadata"]["resourceVersion"].isdigit()
    assert [p["metadata"]["name"] for p in body["items"]] == ["mysql-1", "web-0"]


def test_fake_rejects_unparsable_selectors_with_bad_request(server: FakeApiServer):
    code, body = _raw_get(server, "/api/v1/nodes?fieldSelector=spec.podCIDR%3Dx")

    assert code == 400
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "field label not supported: spec.podCIDR",
        "reason": "BadRequest",
        "code": 400,
    }


def test_fake_discovery_documents(server: FakeApiServer):
    _, core = _raw_get(server, "/api/v1")
    _, groups = _raw_get(server, "/apis")
    _, version = _raw_get(server, "/version")

    assert "apiVersion" not in core
    assert {r["name"] for r in core["resources"]} == {
        "namespaces",
        "nodes",
        "pods",
        "services",
        "endpoints",
    }
    assert [g["name"] for g in groups["groups"]] == [
        "discovery.k8s.io",
        "networking.k8s.io",
        "crd.projectcalico.org",
    ]
    assert version["gitVersion"] == "v1.30.4"


def test_fake_unauthenticated_request_gets_401_status(server: FakeApiServer):
    code, body = _raw_get(server, "/api/v1/nodes", token="wrong")

    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
