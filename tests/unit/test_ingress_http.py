"""ingress-http: URL targets, rule matching as ingress-nginx does it, and whole runs against
FakeApiServer, a loopback DNS server and the controller stand-in. Every address is loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from checks.ingress_http import (
    ApiLookup,
    HttpOutcome,
    HttpRequest,
    IngressHttp,
    classify,
    match_rule,
    path_matches,
    url_of,
)
from k8sreach import runner
from k8sreach.cli import _applies
from k8sreach.config import Endpoint, Settings
from k8sreach.result import Report, Status
from k8sreach.target import TargetError, parse_ingress_target, parse_target, split_url
from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import Backend, FakeApiServer
from tests import ingress_standin
from tests.dnsfake import LoopbackDns, reply

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
CONTROLLER = "127.0.0.40"  # the controller stand-in, and the Ingresses' load-balancer IP
NOTHING = "127.0.0.41"  # nothing listens here
WEB_POD = "127.0.1.80"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.fixture(scope="module")
def controller() -> Iterator[int]:
    backend = ingress_standin.serve("backend", "127.0.0.1", 0, name="web")
    closed = ingress_standin.serve("backend", "127.0.0.1", 0)
    closed_port = closed.server_port
    closed.shutdown()
    closed.server_close()  # a backend port where nothing listens any more: the stand-in's 502
    web = [f"127.0.0.1:{backend.server_port}"]
    routes = [
        {"host": "shop.example.test", "path": "/app", "pathType": "Prefix", "backends": web},
        {"host": "unlisted.example.test", "path": "/", "pathType": "Prefix", "backends": web},
        {"host": "error.example.test", "path": "/", "pathType": "Prefix", "backends": web},
        {"host": "empty.example.test", "path": "/", "pathType": "Prefix", "backends": []},
        {
            "host": "broken.example.test",
            "path": "/",
            "pathType": "Prefix",
            "backends": [f"127.0.0.1:{closed_port}"],
        },
    ]
    server = ingress_standin.serve("controller", CONTROLLER, 0, routes=routes)
    try:
        yield server.server_port
    finally:
        for s in (server, backend):
            s.shutdown()
            s.server_close()


def _objects() -> list[dict]:
    lb = [CONTROLLER]

    def ing(name: str, host: str, service: str, port: int | str, path: str = "/") -> dict:
        return kubeapi.ingress(
            name, host=host, service=service, port=port, path=path, load_balancer_ips=lb
        )

    return [
        ing("shop", "shop.example.test", "web", "http", "/app"),
        ing("unlisted", "unlisted.example.test", "web", "http"),
        ing("error", "error.example.test", "web", "http"),
        ing("empty", "empty.example.test", "web-empty", 80),
        ing("broken", "broken.example.test", "web", "http"),
        kubeapi.service(
            "web",
            cluster_ip="127.0.0.81",
            selector={"app": "web"},
            ports=[kubeapi.service_port(80, name="http", target_port=8080)],
        ),
        kubeapi.endpoint_slice(
            "web",
            backends=[Backend(WEB_POD, pod="web-0", node="node-1")],
            ports=[{"name": "http", "port": 8080}],
        ),
        kubeapi.pod("web-0", ip=WEB_POD, labels={"app": "web"}, ports=[8080]),
        kubeapi.service("web-empty", cluster_ip="127.0.0.82", selector={"app": "shop"}, ports=[80]),
        kubeapi.endpoint_slice("web-empty"),
    ]


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer(_objects()) as server:
        yield server


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    def answer(query: bytes) -> list[bytes]:
        name = str(dns.message.from_wire(query).question[0].name)
        if name.endswith(".example.test.") and not name.startswith("unlisted."):
            return [reply(query, records=[f"{name} 5 IN A {CONTROLLER}"])]
        return [reply(query, rcode=dns.rcode.NXDOMAIN)]

    with LoopbackDns(answer) as server:
        yield server.port


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "config")


def _run(
    url: str | None,
    dns_port: int,
    kubeconfig: Path | None = None,
    *,
    ingress: str | None = None,
    namespace: str | None = None,
) -> Report:
    settings = Settings(
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        dns=Endpoint("127.0.0.1", dns_port),
        timeout=1.0,
        ingress=ingress,
    )
    target = parse_ingress_target(url, ingress=ingress, namespace=namespace)
    return runner.run([IngressHttp()], settings, target)


def _ms(text: str) -> str:
    return re.sub(r"in [0-9.]+ ms", "in N ms", text)


# -- whole runs --------------------------------------------------------------------------------


def test_matching_rule_reaches_the_backend_through_the_ingress_address(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://shop.example.test:{controller}/app/cart", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.PASS
    assert _ms(row.summary) == (
        f"GET http://shop.example.test:{controller}/app/cart -> 200 OK via {CONTROLLER}:"
        f"{controller} in N ms (rule shop.example.test/app (Prefix) of default/shop -> web:http)"
    )
    assert report.reachable is True
    request = row.evidence["request"]
    assert request["host_header"] == f"shop.example.test:{controller}"
    assert request["address_from"] == "the Ingress's status.loadBalancer"
    assert row.evidence["response"]["body_head"] == "web: hello from /app/cart"
    assert row.evidence["response"]["from_controller"] is False
    assert row.evidence["api"]["backend"]["ready"] == [f"{WEB_POD}:8080"]
    assert row.evidence["resolution"]["addresses"] == [CONTROLLER]


def test_host_without_rule_is_no_rule_matches_from_the_api_and_the_default_backend(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://other.example.test:{controller}/", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.FAIL
    assert row.summary == (
        "no rule matches other.example.test/: no Ingress rule in any namespace covers it; the "
        f"controller at {CONTROLLER}:{controller} answered its default backend (404 Not Found)"
    )
    assert row.evidence["request"]["address_from"] == "DNS"
    assert row.evidence["response"]["from_controller"] is True
    assert "shop.example.test" in row.evidence["rule_hosts"]
    assert row.remediation.startswith("No Ingress rule serves other.example.test/.")


def test_misspelt_host_names_the_closest_rule_host(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://shpo.example.test:{controller}/app", dns_port, kubeconfig)

    assert report.results[0].summary.startswith(
        "no rule matches shpo.example.test/app (closest host: shop.example.test): "
    )


def test_path_outside_the_hosts_rules_says_the_host_has_rules(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://shop.example.test:{controller}/apple", dns_port, kubeconfig)

    row = report.results[0]
    assert row.summary.startswith(
        "no rule matches shop.example.test/apple (host shop.example.test has rules, none for "
        "this path): "
    )


def test_backend_without_endpoints_is_told_from_the_503_and_the_api(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://empty.example.test:{controller}/x", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.FAIL
    assert row.summary == (
        f"backend Service default/web-empty has no endpoints (none at all): the controller at "
        f"{CONTROLLER}:{controller} answered 503 Service Temporarily Unavailable (rule "
        "empty.example.test/ (Prefix) of default/empty -> web-empty:80)"
    )
    assert "kubectl get pods -n default -l app=shop" in row.remediation


def test_backend_refusing_is_a_backend_error_although_endpoints_are_ready(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://broken.example.test:{controller}/", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.FAIL
    assert row.summary == (
        f"backend error: GET http://broken.example.test:{controller}/ -> 502 Bad Gateway via "
        f"{CONTROLLER}:{controller}: the backend pods refuse or reset the connection; the "
        "Service has 1 ready endpoint(s) (rule broken.example.test/ (Prefix) of default/broken "
        "-> web:http)"
    )


def test_application_500_is_a_backend_error_of_the_application(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://error.example.test:{controller}/status/500", dns_port, kubeconfig)

    row = report.results[0]
    assert row.summary.startswith(
        f"backend error: GET http://error.example.test:{controller}/status/500 -> 500 Internal "
        f"Server Error via {CONTROLLER}:{controller}: the application answered it"
    )


def test_without_kubeconfig_the_default_backend_404_alone_says_no_rule(
    controller: int, dns_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HOME", str(tmp_path))

    report = _run(f"http://other.example.test:{controller}/", dns_port)

    row = report.results[0]
    assert row.summary == (
        f"no rule matches other.example.test/: the controller at {CONTROLLER}:{controller} "
        "answered its default backend (404 Not Found)"
    )
    assert row.evidence["api"]["used"] is False


def test_without_kubeconfig_the_controllers_503_says_no_endpoints_most_likely(
    controller: int, dns_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HOME", str(tmp_path))

    report = _run(f"http://empty.example.test:{controller}/", dns_port)

    assert report.results[0].summary == (
        f"backend Service has no endpoints (most likely): the controller at {CONTROLLER}:"
        f"{controller} answered its own 503 Service Temporarily Unavailable page"
    )


def test_host_that_does_not_resolve_fails_though_the_ingress_address_works(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(f"http://unlisted.example.test:{controller}/", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.FAIL
    assert _ms(row.summary) == (
        f"unlisted.example.test does not resolve (NXDOMAIN from the DNS server 127.0.0.1:"
        f"{dns_port}): clients cannot find the controller; through the Ingress's address "
        f"{CONTROLLER} the request works (GET http://unlisted.example.test:{controller}/ -> "
        f"200 OK via {CONTROLLER}:{controller} in N ms (rule unlisted.example.test/ (Prefix) "
        "of default/unlisted -> web:http))"
    )
    assert row.remediation.startswith("Publish the name: an A record unlisted.example.test -> ")


def test_controller_address_that_refuses_is_its_own_failure(dns_port: int, kubeconfig: Path):
    report = _run(f"http://{NOTHING}:8080/", dns_port, kubeconfig)

    row = report.results[0]
    assert row.status is Status.FAIL
    assert row.summary == f"the controller at {NOTHING}:8080 refused the connection"
    assert row.evidence["request"]["address_from"] == "the URL"


def test_named_ingress_whose_rules_miss_the_url_warns_that_another_rule_served_it(
    controller: int, dns_port: int, kubeconfig: Path
):
    report = _run(
        f"http://shop.example.test:{controller}/app", dns_port, kubeconfig, ingress="empty"
    )

    row = report.results[0]
    assert row.status is Status.WARN
    assert row.evidence["api"]["scope"] == "Ingress default/empty"
    assert row.summary.endswith(
        " -> 200 OK via 127.0.0.40:" + f"{controller} in {row.evidence['response']['latency_ms']:g}"
        f" ms, but not by Ingress default/empty: none of its rules covers shop.example.test:"
        f"{controller}/app"
    )
    assert "`kubectl describe ingress empty -n default`" in row.remediation


def test_unknown_ingress_name_fails_with_the_closest_names(dns_port: int, kubeconfig: Path):
    report = _run(None, dns_port, kubeconfig, ingress="shpo")

    row = report.results[0]
    assert row.status is Status.FAIL
    assert row.summary == "ingress default/shpo not found; closest: shop"


def test_ingress_name_without_kubeconfig_skips_saying_what_is_needed(
    dns_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HOME", str(tmp_path))

    report = _run(None, dns_port, ingress="shop")

    assert report.results[0].status is Status.SKIP
    assert report.results[0].summary.startswith("--ingress NAME needs the cluster's API")


def test_expired_credentials_still_judge_by_the_controllers_answer(
    api: FakeApiServer, controller: int, dns_port: int, kubeconfig: Path
):
    api.credentials_expired = True
    try:
        report = _run(f"http://other.example.test:{controller}/", dns_port, kubeconfig)
    finally:
        api.credentials_expired = False

    row = report.results[0]
    assert row.summary.startswith("no rule matches other.example.test/: the controller at ")
    assert "401 Unauthorized" in row.evidence["api"]["problem"]


# -- which rule serves a request -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "path_type", "asked", "served"),
    [
        ("/app", "Prefix", "/app", True),
        ("/app", "Prefix", "/app/", True),
        ("/app", "Prefix", "/app/cart", True),
        ("/app", "Prefix", "/apple", False),
        ("/app/", "Prefix", "/app", True),
        ("/", "Prefix", "/anything", True),
        ("/app", "Exact", "/app", True),
        ("/app", "Exact", "/app/", False),
        ("/app", "ImplementationSpecific", "/apple", True),
        ("/app", "ImplementationSpecific", "/ap", False),
    ],
)
def test_path_types_serve_as_ingress_nginx_serves_them(rule, path_type, asked, served):
    assert path_matches(rule, path_type, asked) is served


def test_regex_paths_match_case_insensitively_with_use_regex():
    assert path_matches("/api/v[0-9]+", "ImplementationSpecific", "/API/v2/users", regex=True)
    assert not path_matches("/api/v[0-9]+", "ImplementationSpecific", "/api/beta", regex=True)


def _ing(name: str, rules: list[dict], **kw: object) -> dict:
    return kubeapi.ingress(name, rules=rules, **kw)  # type: ignore[arg-type]


def test_exact_beats_a_longer_prefix_and_the_longest_prefix_wins():
    rules = [
        kubeapi.ingress_rule(
            "shop.example.test",
            [
                kubeapi.ingress_path("root", 80, path="/"),
                kubeapi.ingress_path("app", 80, path="/app"),
                kubeapi.ingress_path("cart", 80, path="/app/cart"),
                kubeapi.ingress_path("exact", 80, path="/app/cart", path_type="Exact"),
            ],
        )
    ]
    ingresses = [_ing("shop", rules)]

    assert match_rule(ingresses, "shop.example.test", "/app/cart").service == "exact"
    assert match_rule(ingresses, "shop.example.test", "/app/cart/1").service == "cart"
    assert match_rule(ingresses, "shop.example.test", "/app/x?q=1").service == "app"
    assert match_rule(ingresses, "SHOP.example.test", "/other").service == "root"


def test_a_host_with_rules_never_falls_back_to_the_rules_without_host():
    ingresses = [
        _ing(
            "shop",
            [
                kubeapi.ingress_rule(
                    "shop.example.test", [kubeapi.ingress_path("a", 80, path="/app")]
                )
            ],
        ),
        _ing("all", [kubeapi.ingress_rule(None, [kubeapi.ingress_path("b", 80)])]),
    ]

    assert match_rule(ingresses, "shop.example.test", "/other") is None
    caught = match_rule(ingresses, "else.example.test", "/other")
    assert (caught.service, caught.via) == ("b", "any host")


def test_wildcard_hosts_serve_subdomains_and_the_longest_wildcard_wins():
    ingresses = [
        _ing("a", [kubeapi.ingress_rule("*.example.test", [kubeapi.ingress_path("wide", 80)])]),
        _ing("b", [kubeapi.ingress_rule("*.eu.example.test", [kubeapi.ingress_path("eu", 80)])]),
    ]

    assert match_rule(ingresses, "shop.example.test", "/").service == "wide"
    assert match_rule(ingresses, "shop.eu.example.test", "/").service == "eu"
    assert match_rule(ingresses, "example.test", "/") is None


def test_rules_of_several_ingresses_for_one_host_are_merged():
    ingresses = [
        _ing(
            "one",
            [kubeapi.ingress_rule("shop.example.test", [kubeapi.ingress_path("a", 80, path="/a")])],
        ),
        _ing(
            "two",
            [kubeapi.ingress_rule("shop.example.test", [kubeapi.ingress_path("b", 80, path="/b")])],
        ),
    ]

    found = match_rule(ingresses, "shop.example.test", "/b/1")
    assert (found.ingress, found.service) == ("two", "b")


def test_an_ingress_with_only_a_default_backend_serves_every_other_host():
    ingresses = [kubeapi.ingress("fallback", default_backend=("catch", 8080))]

    found = match_rule(ingresses, "any.example.test", "/x")
    assert (found.service, found.port, found.via) == ("catch", 8080, "default backend")


def test_url_of_an_ingress_is_its_first_plain_rule():
    shop = kubeapi.ingress("shop", host="shop.example.test", service="web", port=80, path="/app")
    wildcard = _ing(
        "w",
        [
            kubeapi.ingress_rule("*.example.test", [kubeapi.ingress_path("x", 80)]),
            kubeapi.ingress_rule("b.example.test", [kubeapi.ingress_path("x", 80, path="/b")]),
        ],
    )
    hostless = kubeapi.ingress("h", service="web", port=80, load_balancer_ips=["10.0.0.5"])

    assert url_of(shop) == "http://shop.example.test/app"
    assert url_of(wildcard) == "http://b.example.test/b"
    assert url_of(hostless) == "http://10.0.0.5/"
    assert url_of(kubeapi.ingress("none", service="web", port=80)) is None


# -- the judgement on fixed answers -------------------------------------------------------------


def _request(url: str = "http://shop.example.test/app") -> HttpRequest:
    return HttpRequest(split_url(url), "192.0.2.10", "DNS")


def _response(status: int, reason: str, body: str = "") -> HttpOutcome:
    return HttpOutcome("response", 3.0, status, reason, {"server": "nginx"}, body)


def test_redirect_passes_naming_where_it_goes_without_following_it():
    outcome = HttpOutcome(
        "response", 2.0, 308, "Permanent Redirect", {"location": "https://shop.example.test/app"}
    )

    finding = classify(_request(), outcome, ApiLookup(False))

    assert finding.status is Status.PASS
    assert finding.summary == (
        "GET http://shop.example.test/app -> 308 Permanent Redirect via 192.0.2.10:80 in 2 ms "
        "to https://shop.example.test/app (not followed)"
    )


def test_applications_own_404_is_a_warning_not_no_rule():
    finding = classify(_request(), _response(404, "Not Found", "no such page"), ApiLookup(False))

    assert finding.status is Status.WARN
    assert finding.summary.endswith(": the backend itself answers 404 (not the controller's page)")


def test_default_backend_404_with_a_rule_in_the_api_means_the_controller_skipped_it():
    ingresses = (kubeapi.ingress("shop", host="shop.example.test", service="web", port=80),)
    match = match_rule(ingresses, "shop.example.test", "/app")
    lookup = ApiLookup(True, "any namespace", ingresses=ingresses, match=match)
    page = ingress_standin.nginx_page(404).decode()

    finding = classify(_request(), _response(404, "Not Found", page), lookup)

    assert finding.summary == (
        "the controller at 192.0.2.10:80 answers its default backend (404 Not Found) for "
        "shop.example.test/app, although rule shop.example.test/ (Prefix) of default/shop -> "
        "web:80: the controller has not loaded that Ingress"
    )
    assert "class (nginx)" in finding.remediation


def test_gateway_timeout_is_a_slow_backend():
    finding = classify(_request(), _response(504, "Gateway Time-out"), ApiLookup(False))

    assert finding.summary == (
        "backend error: GET http://shop.example.test/app -> 504 Gateway Time-out via "
        "192.0.2.10:80: the backend did not answer within the controller's proxy timeout"
    )


# -- targets and the command line ----------------------------------------------------------------


def test_url_target_keeps_host_port_path_and_query():
    target = parse_ingress_target("HTTP://Shop.Example.test:8080/app?x=1#top", namespace="web")

    assert (target.kind, target.url, target.port, target.namespace) == (
        "ingress",
        "http://shop.example.test:8080/app?x=1",
        8080,
        "web",
    )
    assert target.as_dict() == {
        "service": None,
        "namespace": "web",
        "fqdn": None,
        "port": 8080,
        "url": "http://shop.example.test:8080/app?x=1",
        "ingress": None,
    }
    assert split_url("https://shop.example.test").host_header == "shop.example.test"
    assert split_url("https://shop.example.test").port == 443


def test_url_without_namespace_looks_in_every_namespace_and_ingress_defaults_to_default():
    assert parse_ingress_target("http://a.example.test/").namespace == ""
    assert parse_ingress_target(None, ingress="shop").namespace == "default"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://a.example.test/", "is not http:// or https://"),
        ("http:///app", "names no host"),
        ("http://bad_host.example/", "is not a valid DNS name"),
        ("http://a.example.test:99999/", "is malformed"),
    ],
)
def test_bad_urls_are_refused_saying_why(url, message):
    with pytest.raises(TargetError, match=message):
        parse_ingress_target(url)


def test_url_with_credentials_is_refused_without_repeating_them():
    with pytest.raises(TargetError) as caught:
        parse_ingress_target("http://admin:hunter22@a.example.test/")

    assert "hunter22" not in str(caught.value)
    assert "carries a user name or password" in str(caught.value)


def test_service_targets_are_unchanged_and_still_refuse_urls():
    assert parse_target("mysql-read.default").kind == "service"
    with pytest.raises(TargetError, match="is a URL"):
        parse_target("http://x.example/app")


def test_ingress_runs_take_only_the_ingress_check_and_service_runs_leave_it_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from checks.nodeport_connect import NodeportConnect
    from checks.tcp_connect import TcpConnect

    monkeypatch.setenv("HOME", str(tmp_path))
    url_run = parse_ingress_target("http://a.example.test/")
    service_run = parse_target("web.default")

    assert _applies(IngressHttp, url_run, Settings()) is True
    assert _applies(TcpConnect, url_run, Settings()) is False
    assert _applies(IngressHttp, service_run, Settings()) is False
    assert _applies(NodeportConnect, service_run, Settings()) is False
    assert _applies(NodeportConnect, service_run, Settings(kubeconfig="/k")) is True


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    return subprocess.run(
        [sys.executable, "-m", "k8sreach", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a TARGET (NAME.NAMESPACE[:PORT] or a URL such as"),
        (("web.default", "--ingress", "shop"), "with --ingress, TARGET is the URL to request"),
        (("http://a.example.test/", "-p", "80"), "takes its port from the URL; leave out -p"),
        (("http://u:secretpw@a.example.test/",), "carries a user name or password"),
    ],
)
def test_command_line_mistakes_of_ingress_runs_exit_2_with_one_line(args, message):
    done = _cli(*args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "secretpw" not in done.stderr


def test_json_of_a_url_run_has_only_the_ingress_check(controller: int, dns_port: int, tmp_path):
    env_home = {"HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8sreach",
            "doctor",
            f"http://other.example.test:{controller}/",
            "--dns",
            f"127.0.0.1:{dns_port}",
            "--timeout",
            "1",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k not in _PROXY_VARS}, **env_home},
        timeout=60,
        check=False,
    )

    import json

    doc = json.loads(done.stdout)
    assert done.returncode == 1
    assert [c["id"] for c in doc["checks"]] == ["ingress-http"]
    assert doc["first_failure"] == "ingress-http"
    assert doc["target"]["url"] == f"http://other.example.test:{controller}/"
