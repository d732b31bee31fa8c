"""The `ingress-http` check."""

from __future__ import annotations

import difflib
import http.client
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from checks import _exposure
from checks._common import (
    NO_SUCH_PATH,
    MalformedObject,
    api_call,
    as_dict,
    as_dicts,
    as_port,
    as_str,
    clean_service,
    host_port,
    label_selector,
    type_name,
)
from checks._exposure import Resolution
from checks.endpoints_ready import from_endpoints, from_slices, split
from checks.service_exists import choose_port
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.result import Finding, Hop, Status, failed, passed, skipped, warned
from k8sreach.target import UrlParts, split_url

LOG = logging.getLogger(__name__)

READ_LIMIT = 4096  # bytes of the response body read: enough to recognise the controller's page
_BODY_SHOWN = 300  # characters of the body kept as evidence
_HEADERS_KEPT = ("server", "content-type", "content-length", "location")
_CLOSEST = 3
# hosts share long suffixes (.example.com), so only a near miss (a typo) counts as close
_HOST_CUTOFF = 0.85
_REGEX_ANNOTATION = "nginx.ingress.kubernetes.io/use-regex"
_REWRITE_ANNOTATION = "nginx.ingress.kubernetes.io/rewrite-target"
PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


# -- which rule serves a request, as ingress-nginx decides it ----------------------------------


@dataclass(frozen=True)
class RuleMatch:
    """The Ingress path that serves a request, and where it sends it."""

    namespace: str
    ingress: str
    host: str | None  # the rule's host; None: a rule for every host
    path: str
    path_type: str
    service: str | None  # None: a resource backend (not a Service)
    port: int | str | None
    ingress_class: str | None
    addresses: tuple[str, ...]  # the Ingress's status.loadBalancer.ingress, IPs or hostnames
    via: str  # "host", "wildcard host", "any host" or "default backend"

    def describe(self) -> str:
        """Return e.g. 'rule shop.example.com/app (Prefix) of default/shop -> web:8080'."""
        backend = f"{self.service}:{self.port}" if self.service else "a resource backend"
        what = "default backend" if self.via == "default backend" else "rule"
        host = self.host or "*"
        return (
            f"{what} {host}{self.path} ({self.path_type}) of {self.namespace}/{self.ingress} "
            f"-> {backend}"
        )

    def doc(self) -> dict[str, Any]:
        return {
            "ingress": f"{self.namespace}/{self.ingress}",
            "host": self.host,
            "path": self.path,
            "path_type": self.path_type,
            "matched_by": self.via,
            "service": self.service,
            "port": self.port,
            "ingress_class": self.ingress_class,
            "load_balancer": list(self.addresses),
        }


def path_matches(rule_path: str, path_type: str, request_path: str, regex: bool = False) -> bool:
    """Return whether an Ingress path serves the request path (its query left off).

    Exact: the same path. Prefix: whole '/' segments (/app serves /app and /app/x, not /apple;
    a trailing '/' on the rule does not matter). ImplementationSpecific: as ingress-nginx
    treats it, a plain string prefix, or a case-insensitive regex with use-regex.
    """
    if path_type == "Exact":
        return request_path == rule_path
    if path_type == "Prefix":
        base = rule_path.rstrip("/")
        return not base or request_path == base or request_path.startswith(base + "/")
    if regex:
        try:
            return re.match(rule_path, request_path, re.IGNORECASE) is not None
        except re.error:
            return False
    return request_path.startswith(rule_path)


@dataclass(frozen=True)
class _Location:
    ingress: Mapping[str, Any]
    host: str | None
    path: str
    path_type: str
    backend: Mapping[str, Any]
    regex: bool
    default: bool = False


def _uses_regex(ingress: Mapping[str, Any]) -> bool:
    notes = as_dict(as_dict(ingress.get("metadata")).get("annotations"))
    # ingress-nginx turns every path into a regex when either annotation is set
    return notes.get(_REGEX_ANNOTATION) == "true" or _REWRITE_ANNOTATION in notes


def _ingress_name(ing: Mapping[str, Any], n: int) -> str:
    meta = as_dict(ing.get("metadata"))
    name, namespace = as_str(meta.get("name")), as_str(meta.get("namespace"))
    return f"{namespace or 'default'}/{name}" if name else f"#{n}"


def _rules(ing: Mapping[str, Any], name: str, notes: list[str]) -> list[dict[str, Any]]:
    """Return an Ingress's rules that are mappings; anything else noted and left out."""
    raw = as_dict(ing.get("spec")).get("rules")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.append(f"Ingress {name}: spec.rules is {type_name(raw)}, not a list: ignored")
        return []
    rules = as_dicts(raw)
    if len(rules) != len(raw):
        notes.append(f"Ingress {name}: {len(raw) - len(rules)} rule(s) not objects: ignored")
    return rules


def _paths(rule: Mapping[str, Any], name: str, notes: list[str]) -> list[dict[str, Any]]:
    raw = as_dict(rule.get("http")).get("paths")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.append(f"Ingress {name}: http.paths is {type_name(raw)}, not a list: ignored")
        return []
    paths = as_dicts(raw)
    if len(paths) != len(raw):
        notes.append(f"Ingress {name}: {len(raw) - len(paths)} path(s) not objects: ignored")
    return paths


def _servers(
    ingresses: Sequence[Mapping[str, Any]], notes: list[str] | None = None
) -> dict[str, list[_Location]]:
    """Return the locations of each host ('_' for rules without host), all Ingresses merged;
    malformed Ingresses, rules and paths are left out, with a line in `notes`."""
    notes = [] if notes is None else notes
    servers: dict[str, list[_Location]] = {}
    for n, ing in enumerate(ingresses):
        if not isinstance(ing, Mapping):
            notes.append(f"Ingress #{n} is {type_name(ing)}, not an object: ignored")
            continue
        spec_in = ing.get("spec")
        name = _ingress_name(ing, n)
        if spec_in is not None and not isinstance(spec_in, Mapping):
            notes.append(f"Ingress {name}: spec is {type_name(spec_in)}: ignored")
            continue
        spec = as_dict(spec_in)
        regex = _uses_regex(ing)
        rules = _rules(ing, name, notes)
        for rule in rules:
            host = (as_str(rule.get("host")) or "").lower() or None
            for p in _paths(rule, name, notes):
                path = p.get("path")
                if path is not None and not isinstance(path, str):
                    notes.append(f"Ingress {name}: a path is {type_name(path)}: ignored")
                    continue
                path_type = p.get("pathType") or "ImplementationSpecific"
                if path_type not in PATH_TYPES:
                    notes.append(
                        f"Ingress {name}: path {path or '/'} has the unknown pathType "
                        f"{str(path_type)[:40]!r}: ignored"
                    )
                    continue
                servers.setdefault(host or "_", []).append(
                    _Location(ing, host, path or "/", path_type, as_dict(p.get("backend")), regex)
                )
        default = spec.get("defaultBackend")
        if isinstance(default, Mapping) and default and not rules:
            # an Ingress with only a default backend serves every host without a rule
            servers.setdefault("_", []).append(
                _Location(ing, None, "/", "Prefix", dict(default), False, default=True)
            )
    return servers


def _server_for(servers: Mapping[str, Sequence[_Location]], host: str) -> tuple[str, str] | None:
    if host in servers:
        return host, "host"
    # nginx: the longest matching leading wildcard; *.example.com serves a.b.example.com too
    wild = [k for k in servers if k.startswith("*.") and host.endswith(k[1:])]
    if wild:
        return max(wild, key=len), "wildcard host"
    if "_" in servers:
        return "_", "any host"
    return None


def match_rule(
    ingresses: Sequence[Mapping[str, Any]],
    host: str,
    request_path: str,
    notes: list[str] | None = None,
) -> RuleMatch | None:
    """Return the Ingress path ingress-nginx would serve host + path with, or None.

    A host with a server of its own never falls back to the rules without host: a path none
    of its rules serves goes to the controller's default backend (a 404), as in ingress-nginx.
    Exact beats everything; else the longest matching path wins (with use-regex, the longest
    matching pattern).
    """
    # Known shortcoming: every Ingress counts whatever its class, so where several controllers
    # share a cluster, a rule meant for another controller may be taken as this one's.
    path_only = request_path.split("?", 1)[0] or "/"
    servers = _servers(ingresses, notes)
    found = _server_for(servers, host.lower())
    if found is None:
        return None
    key, via = found
    hits = [
        loc
        for loc in servers[key]
        if path_matches(loc.path, loc.path_type, path_only, loc.regex and loc.path_type != "Exact")
    ]
    if not hits:
        return None
    exact = [loc for loc in hits if loc.path_type == "Exact"]
    best = exact[0] if exact else max(hits, key=lambda loc: len(loc.path.rstrip("/")))
    meta = as_dict(best.ingress.get("metadata"))
    spec = as_dict(best.ingress.get("spec"))
    service = as_dict(best.backend.get("service"))
    port_ref = as_dict(service.get("port"))
    balancer = as_dicts(
        as_dict(as_dict(best.ingress.get("status")).get("loadBalancer")).get("ingress")
    )
    return RuleMatch(
        namespace=as_str(meta.get("namespace")) or "default",
        ingress=str(as_str(meta.get("name"))),
        host=best.host,
        path=best.path,
        path_type=best.path_type,
        service=as_str(service.get("name")) or None,
        port=as_port(port_ref.get("number")) or as_str(port_ref.get("name")) or None,
        ingress_class=as_str(spec.get("ingressClassName"))
        or as_str(as_dict(meta.get("annotations")).get("kubernetes.io/ingress.class")),
        addresses=tuple(
            str(a) for e in balancer if (a := as_str(e.get("ip")) or as_str(e.get("hostname")))
        ),
        via="default backend" if best.default else via,
    )


def rule_hosts(ingresses: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return every host the Ingresses have rules for, sorted."""
    return sorted({k for k in _servers(ingresses) if k != "_"})


def url_of(ingress: Mapping[str, Any]) -> str | None:
    """Return a URL that the Ingress's first usable rule serves: http://HOST/PATH (a rule
    without host: the Ingress's load-balancer IP); None when no rule gives one."""
    spec = as_dict(ingress.get("spec"))
    balancer = as_dicts(as_dict(as_dict(ingress.get("status")).get("loadBalancer")).get("ingress"))
    ips = [ip for e in balancer if (ip := as_str(e.get("ip")))]
    notes: list[str] = []
    rules = _rules(ingress, "", notes) or ([{}] if spec.get("defaultBackend") else [])
    for rule in rules:
        host = as_str(rule.get("host")) or (ips[0] if ips else "")
        if not host or host.startswith("*."):
            continue
        if ":" in host:
            host = f"[{host}]"
        paths = _paths(rule, "", notes) or [{}]
        path = as_str(paths[0].get("path")) or "/"
        if not path.startswith("/") or re.search(r"[()\[\]*+?$^|\\]", path):
            path = "/"  # a regex path: ask for the root, the rule's host is what matters here
        return f"http://{host}{path}"
    return None


# -- the backend Service, from the API -----------------------------------------------------------


@dataclass(frozen=True)
class BackendState:
    """The backend Service of the matched rule as the API has it."""

    namespace: str
    service: str
    port: int | str | None
    found: bool = True
    port_problem: str | None = None
    ready: tuple[str, ...] = ()
    not_ready: tuple[str, ...] = ()
    selector: str | None = None
    external_name: str | None = None
    problem: str | None = None  # the API could not say (a refused request)

    @property
    def known(self) -> bool:
        """Return whether the API said how many endpoints are ready."""
        return self.found and self.problem is None and self.external_name is None

    def doc(self) -> dict[str, Any]:
        return {
            "service": f"{self.namespace}/{self.service}",
            "port": self.port,
            "found": self.found,
            "port_problem": self.port_problem,
            "ready": list(self.ready),
            "not_ready": list(self.not_ready),
            "selector": self.selector,
            "external_name": self.external_name,
            "problem": self.problem,
        }


def backend_state(
    access: Any, namespace: str, service: str, port: int | str | None
) -> BackendState:
    """Return the backend Service's ready and not-ready endpoints for the rule's port."""
    from k8sreach.cluster import ClusterError

    try:
        svc = api_call(access.get_service, namespace, service)
    except Unavailable as exc:
        return BackendState(namespace, service, port, problem=exc.reason)
    except ClusterError:
        return BackendState(namespace, service, port, found=False)
    try:
        svc, _ = clean_service(svc)
    except MalformedObject as exc:
        return BackendState(
            namespace, service, port, problem=f"the API returned a malformed Service: {exc}"
        )
    spec = svc["spec"]
    selector = label_selector(spec.get("selector") or {}) or None
    if spec.get("type") == "ExternalName":
        return BackendState(
            namespace, service, port, selector=selector, external_name=spec.get("externalName")
        )
    choice = choose_port(list(spec.get("ports") or []), port)
    if choice.entry is None and port is not None:
        return BackendState(
            namespace, service, port, selector=selector, port_problem=choice.problem
        )
    try:
        slices = api_call(access.list_endpoint_slices, namespace, service)
        endpoints = from_slices(slices)
        if not slices:
            try:
                endpoints = from_endpoints(api_call(access.get_endpoints, namespace, service))
            except ClusterError:
                endpoints = []
    except Unavailable as exc:
        return BackendState(namespace, service, port, selector=selector, problem=exc.reason)
    except ClusterError as exc:
        if exc.server_message != NO_SUCH_PATH:
            return BackendState(namespace, service, port, selector=selector, problem=str(exc))
        try:
            endpoints = from_endpoints(api_call(access.get_endpoints, namespace, service))
        except ClusterError:
            endpoints = []
    parts = split(endpoints, choice.entry)
    return BackendState(
        namespace,
        service,
        port,
        ready=tuple(host_port(ep.ip, p) for ep, p in parts.ready),
        not_ready=tuple(host_port(ep.ip, p) for ep, p in parts.not_ready),
        selector=selector,
        port_problem=choice.problem if choice.entry is not None else None,
    )


@dataclass(frozen=True)
class ApiLookup:
    """What the API said about the request: the Ingresses looked at, the rule, the backend."""

    used: bool
    scope: str = ""
    problem: str | None = None
    ingresses: tuple[Mapping[str, Any], ...] = ()
    match: RuleMatch | None = None
    backend: BackendState | None = None
    ignored: tuple[str, ...] = ()  # malformed Ingresses, rules and paths left out

    def doc(self) -> dict[str, Any]:
        return {
            "malformed_parts_ignored": list(self.ignored),
            "used": self.used,
            "scope": self.scope or None,
            "problem": self.problem,
            "ingresses_seen": len(self.ingresses),
            "rule": self.match.doc() if self.match else None,
            "backend": self.backend.doc() if self.backend else None,
        }


# -- the request ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpOutcome:
    """How one request ended: `kind` is response, refused, timeout, no-response, incomplete,
    unreachable, tls-error or error; a response has status, reason, some headers and the
    body's head."""

    kind: str
    latency_ms: float
    status: int | None = None
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    errno: str | None = None
    error: str | None = None

    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"outcome": self.kind, "latency_ms": self.latency_ms}
        if self.kind == "response":
            doc.update(
                status=self.status,
                reason=self.reason,
                headers=dict(self.headers),
                body_head=" ".join(self.body[:_BODY_SHOWN].split()),
                from_controller=from_controller(self),
            )
        else:
            doc.update(errno=self.errno, error=self.error)
        return doc


@dataclass(frozen=True)
class HttpRequest:
    """Where the request went and what it asked for."""

    url: UrlParts
    address: str
    address_from: str  # "the Ingress's status.loadBalancer", "DNS", "the URL"

    def doc(self) -> dict[str, Any]:
        return {
            "method": "GET",
            "url": self.url.url,
            "address": self.address,
            "port": self.url.port,
            "address_from": self.address_from,
            "host_header": self.url.host_header,
            "path": self.url.path,
            "tls": self.url.scheme == "https",
        }

    @property
    def where(self) -> str:
        return host_port(self.address, self.url.port)


def http_get(request: HttpRequest, timeout: float, limit: int = READ_LIMIT) -> HttpOutcome:
    """Send one GET with the URL's Host header to the address; the whole exchange, connect to
    the last byte read, within `timeout`. Redirects are not followed."""
    import errno as errnos

    from k8sreach import __version__

    url = request.url
    LOG.debug(
        "probe: GET %s (Host: %s) to %s (timeout %.1f s)",
        url.path,
        url.host_header,
        request.where,
        timeout,
    )
    start = time.monotonic()

    def ms() -> float:
        return round((time.monotonic() - start) * 1000, 1)

    try:
        sock = socket.create_connection((request.address, url.port), timeout=timeout)
    except TimeoutError:
        return HttpOutcome("timeout", ms(), errno="ETIMEDOUT", error=f"no answer in {timeout:g} s")
    except OSError as exc:
        name = errnos.errorcode.get(exc.errno or 0, str(exc.errno))
        kind = {
            errnos.ECONNREFUSED: "refused",
            errnos.ENETUNREACH: "unreachable",
            errnos.EHOSTUNREACH: "unreachable",
            errnos.ETIMEDOUT: "timeout",
        }.get(exc.errno or 0, "error")
        return HttpOutcome(kind, ms(), errno=name, error=exc.strerror or str(exc))
    # a server that trickles its answer must not outlast the timeout: cut the socket then
    # (the one in use: after the TLS wrap that is the TLS socket)
    live: list[socket.socket] = [sock]
    cut = threading.Event()
    watchdog = threading.Timer(max(0.0, timeout - (time.monotonic() - start)), _cut, (live, cut))
    watchdog.daemon = True
    watchdog.start()
    conn = http.client.HTTPConnection(request.address, url.port, timeout=timeout)
    try:
        if url.scheme == "https":
            tls = ssl.create_default_context()
            sock = tls.wrap_socket(sock, server_hostname=url.host, do_handshake_on_connect=False)
            live[0] = sock
            if cut.is_set():
                raise TimeoutError
            sock.do_handshake()
        conn.sock = sock
        conn.putrequest("GET", url.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", url.host_header)
        conn.putheader("User-Agent", f"k8sreach/{__version__}")
        conn.putheader("Accept", "*/*")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        if cut.is_set():  # the headers ended by the cut, not by the server
            return _incomplete(ms(), timeout)
        body = response.read(limit)
    except ssl.SSLError as exc:
        return HttpOutcome("tls-error", ms(), error=_one_line(exc.reason or str(exc)))
    except TimeoutError:
        if cut.is_set():
            return _incomplete(ms(), timeout)
        return HttpOutcome("no-response", ms(), errno="ETIMEDOUT", error="no response in time")
    except (http.client.HTTPException, OSError) as exc:
        if cut.is_set():
            return _incomplete(ms(), timeout)
        if not watchdog.is_alive():
            return HttpOutcome("no-response", ms(), errno="ETIMEDOUT", error="no response in time")
        return HttpOutcome("error", ms(), error=_one_line(f"{type(exc).__name__}: {exc}"))
    finally:
        watchdog.cancel()
        conn.close()
        sock.close()
    headers = {k.lower(): v for k, v in response.getheaders() if k.lower() in _HEADERS_KEPT}
    outcome = HttpOutcome(
        "response",
        ms(),
        status=response.status,
        reason=response.reason,
        headers=headers,
        body=body.decode("utf-8", "replace"),
    )
    LOG.debug("answer: %s %s in %.1f ms", outcome.status, outcome.reason, outcome.latency_ms)
    return outcome


def _cut(live: list[socket.socket], cut: threading.Event) -> None:
    cut.set()
    try:
        live[0].shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _incomplete(latency_ms: float, timeout: float) -> HttpOutcome:
    return HttpOutcome(
        "incomplete",
        latency_ms,
        errno="ETIMEDOUT",
        error=f"no complete response within {timeout:g} s",
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def from_controller(outcome: HttpOutcome) -> bool:
    """Return whether a response is the controller's own page (its default backend or an error
    it generated) rather than the application's: nginx's built-in error page, or the default
    backend's text. (ingress-nginx sends `Server: nginx` on every response, so the header
    cannot tell them apart.)"""
    body = outcome.body.lower()
    return "<center>nginx" in body or "default backend" in body


# -- the judgement --------------------------------------------------------------------------------


def classify(
    request: HttpRequest,
    outcome: HttpOutcome,
    lookup: ApiLookup,
    resolution: Resolution | None = None,
    timeout: float | None = None,
) -> Finding:
    """Tell a working Ingress from 'no rule matches', 'backend Service has no endpoints' and
    'backend error', by the status, the controller's page and what the API says."""
    evidence: dict[str, Any] = {
        "request": request.doc(),
        "resolution": resolution.doc() if resolution is not None else None,
        "api": lookup.doc(),
        "response": outcome.doc(),
    }
    finding = _judge_http(request, outcome, lookup, evidence, timeout)
    return _with_dns(finding, request, lookup, resolution)


def _judge_http(
    request: HttpRequest,
    outcome: HttpOutcome,
    lookup: ApiLookup,
    evidence: dict[str, Any],
    timeout: float | None,
) -> Finding:
    url = request.url
    where = request.where
    kw: dict[str, Any] = {"evidence": evidence, "address": where}
    asked = f"{url.host_header}{url.path}"
    match, backend = lookup.match, lookup.backend
    rule = f" ({match.describe()})" if match else ""
    limit = f"{timeout:g} s" if timeout is not None else "the timeout"

    if outcome.kind == "refused":
        return failed(
            f"the controller at {where} refused the connection",
            remediation=f"Nothing listens on {where}: the ingress controller does not run "
            f"there, or its Service (LoadBalancer, NodePort or hostPort) does not expose port "
            f"{url.port}. See `kubectl get service -n ingress-nginx -o wide` and where its pods "
            "run.",
            **kw,
        )
    if outcome.kind == "timeout":
        return failed(
            f"no answer from the controller at {where} within {limit} (connect timed out)",
            remediation=f"Packets to {where} are dropped: a firewall or security group between "
            f"this client and the controller, or the address is not the controller's. Check "
            f"`ip route get {request.address}` and the Ingress's address: `kubectl get ingress "
            "-A -o wide`.",
            **kw,
        )
    if outcome.kind == "no-response":
        return failed(
            f"the controller at {where} took the connection but sent no response within {limit}",
            remediation="The controller (or what listens there) accepted the request and did "
            "not answer: check the controller's logs and load; a backend slower than the "
            "timeout looks the same (retry with a larger --timeout).",
            **kw,
        )
    if outcome.kind == "incomplete":
        return failed(
            f"the controller at {where} sent no complete response within {limit} "
            "(it started answering, then stalled)",
            remediation="What listens there accepted the request and began a response it did "
            "not finish: check the controller's logs and load, and that the address is the "
            "controller's.",
            **kw,
        )
    if outcome.kind == "unreachable":
        return failed(
            f"the controller at {where} is unreachable ({outcome.errno})",
            remediation=f"No route from this client to {request.address}: `ip route get "
            f"{request.address}`.",
            **kw,
        )
    if outcome.kind == "tls-error":
        return failed(
            f"TLS with the controller at {where} (SNI {url.host}) failed: {outcome.error}",
            remediation=f"The controller's certificate for {url.host} is not valid for this "
            "client: check the Ingress's spec.tls secret (`kubectl describe ingress`), or that "
            "the certificate's CA is trusted here.",
            **kw,
        )
    if outcome.kind != "response" or outcome.status is None:
        return failed(f"the request to {where} failed: {outcome.error}", **kw)

    status = outcome.status
    said = f"{status} {outcome.reason}".strip()
    page = from_controller(outcome)
    got = f"GET {url.url} -> {said} via {where} in {outcome.latency_ms:g} ms"

    if 200 <= status < 400 or status in (401, 403):
        note = ""
        if 300 <= status < 400 and outcome.headers.get("location"):
            note = f" to {outcome.headers['location']} (not followed)"
        elif status in (401, 403):
            note = " (the backend asks for credentials: it was reached)"
        if lookup.used and match is None and lookup.problem is None:
            evidence["note"] = f"no rule in {lookup.scope} covers {asked}"
            if lookup.scope.startswith("Ingress "):
                return warned(
                    f"{got}{note}, but not by {lookup.scope}: none of its rules covers {asked}",
                    remediation=f"Another Ingress (or controller) serves {asked}. Compare the "
                    f"rules: `kubectl describe ingress {match_name(lookup)}` and `kubectl get "
                    "ingress -A -o wide`.",
                    facts={facts.REACHABLE: True},
                    **kw,
                )
            note += f"; no rule in {lookup.scope} covers it (another controller answered?)"
        return passed(f"{got}{note}{rule}", facts={facts.REACHABLE: True}, **kw)

    if status == 404:
        if lookup.used and match is None and lookup.problem is None:
            return _no_rule(request, lookup, evidence, page, said)
        if match is not None and page:
            return failed(
                f"the controller at {where} answers its default backend ({said}) for {asked}, "
                f"although {match.describe()}: the controller has not loaded that Ingress",
                remediation=f"Check that the Ingress's class ({match.ingress_class or 'none'}) "
                f"is the controller's (`kubectl get ingressclass`), and the controller's log for "
                f"why it skipped {match.namespace}/{match.ingress} (`kubectl -n ingress-nginx "
                "logs deploy/ingress-nginx-controller`); an address that is another "
                "controller's looks the same.",
                **kw,
            )
        if page:
            return _no_rule(request, lookup, evidence, page, said)
        return warned(
            f"{got}{rule}: the backend itself answers 404 (not the controller's page)",
            remediation=f"The request reached the application, which has nothing at {url.path}. "
            "Check the path, and any rewrite-target annotation on the Ingress that changes "
            "the path the application sees.",
            **kw,
        )

    if status >= 400 and lookup.used and match is None and lookup.problem is None:
        # the API's rules are the better witness: no rule means no backend was chosen
        evidence["controller_answered"] = said
        return _no_rule(request, lookup, evidence, page, said)

    if status == 503:
        if backend is not None and backend.known and not backend.ready:
            return _no_endpoints(request, match, backend, said, evidence)
        if (backend is None or not backend.known) and page:
            return _no_endpoints(request, match, backend, said, evidence)
        return _backend_error(request, match, backend, outcome, said, evidence)

    if status >= 500:
        return _backend_error(request, match, backend, outcome, said, evidence)

    return warned(
        f"{got}{rule}",
        remediation=f"The request got {said}: the backend (or the controller's rules, e.g. "
        "an allow-list annotation) refuses it; see the response in the evidence.",
        **kw,
    )


def match_name(lookup: ApiLookup) -> str:
    """Return 'NAME -n NS' of the Ingress a lookup was scoped to."""
    namespace, _, name = lookup.scope.removeprefix("Ingress ").partition("/")
    return f"{name} -n {namespace}"


def _no_rule(
    request: HttpRequest, lookup: ApiLookup, evidence: dict[str, Any], page: bool, said: str
) -> Finding:
    url = request.url
    asked = f"{url.host}{url.path.split('?', 1)[0]}"
    hosts = rule_hosts(lookup.ingresses)
    closest = difflib.get_close_matches(url.host, hosts, n=_CLOSEST, cutoff=_HOST_CUTOFF)
    evidence["rule_hosts"] = hosts
    evidence["closest_hosts"] = closest
    if lookup.used and lookup.problem is None:
        source = f"no Ingress rule in {lookup.scope} covers it"
        if page:
            source += f"; the controller at {request.where} answered its default backend ({said})"
        elif said:
            source += f"; {request.where} answered {said}"
    else:
        source = f"the controller at {request.where} answered its default backend ({said})"
    hint = f" (closest host: {', '.join(closest)})" if closest else ""
    if url.host in hosts:
        hint = f" (host {url.host} has rules, none for this path)"
    return failed(
        f"no rule matches {asked}{hint}: {source}",
        remediation=(
            f"No Ingress rule serves {asked}. List the rules: `kubectl get ingress -A -o wide` "
            "(hosts) and `kubectl describe ingress NAME -n NS` (paths). Check the host's "
            "spelling and the path type: Prefix matches whole segments (/app serves /app/x, "
            "not /apple), Exact only the path itself. If the rule is in another cluster, the "
            "name points at the wrong controller."
        ),
        evidence=evidence,
        address=request.where,
    )


def _no_endpoints(
    request: HttpRequest,
    match: RuleMatch | None,
    backend: BackendState | None,
    said: str,
    evidence: dict[str, Any],
) -> Finding:
    where = request.where
    if backend is not None and backend.known:
        ref = f"{backend.namespace}/{backend.service}"
        state = f"{len(backend.not_ready)} not ready" if backend.not_ready else "none at all"
        doctor = f"k8sreach doctor {backend.service}.{backend.namespace}"
        if backend.port is not None:
            doctor += f":{backend.port}"
        return failed(
            f"backend Service {ref} has no endpoints ({state}): the controller at {where} "
            f"answered {said}" + (f" ({match.describe()})" if match else ""),
            remediation=(
                f"The controller has nowhere to send the request. See why the Service has no "
                f"ready endpoints: `{doctor} --kubeconfig ...` or `kubectl get endpoints "
                f"{backend.service} -n {backend.namespace}`"
                + (
                    f" and `kubectl get pods -n {backend.namespace} -l {backend.selector}`"
                    if backend.selector
                    else ""
                )
                + "."
            ),
            evidence=evidence,
            address=where,
        )
    ref = f"{match.namespace}/{match.service}" if match and match.service else "the backend Service"
    return failed(
        f"backend Service has no endpoints (most likely): the controller at {where} answered "
        f"its own {said} page" + (f" ({match.describe()})" if match else ""),
        remediation=(
            f"ingress-nginx answers 503 when {ref} has no ready endpoints. Check them: "
            "`kubectl get endpoints SERVICE -n NS` (give --kubeconfig to let k8sreach read them)."
        ),
        evidence=evidence,
        address=where,
    )


def _backend_error(
    request: HttpRequest,
    match: RuleMatch | None,
    backend: BackendState | None,
    outcome: HttpOutcome,
    said: str,
    evidence: dict[str, Any],
) -> Finding:
    status = outcome.status or 0
    where = request.where
    ready = (
        f"; the Service has {len(backend.ready)} ready endpoint(s)"
        if backend is not None and backend.known and backend.ready
        else ""
    )
    rule = f" ({match.describe()})" if match else ""
    svc = f"{match.service} -n {match.namespace}" if match and match.service else "SERVICE -n NS"
    if status == 502:
        why = "the backend pods refuse or reset the connection"
        fix = (
            "The controller reached no working backend: the pods do not listen on the target "
            f"port, or crash. Check the Service's targetPort against the containers' ports "
            f"(`kubectl describe service {svc}`), the pods' logs, and the controller's log for "
            "'upstream' errors."
        )
    elif status == 504:
        why = "the backend did not answer within the controller's proxy timeout"
        fix = (
            "The backend accepted the connection but answered too late (ingress-nginx waits "
            "60 s by default; proxy-read-timeout annotation): check the application's load and "
            "logs."
        )
    elif outcome.kind == "response" and from_controller(outcome):
        why = "the controller itself answered it"
        fix = (
            "The controller generated the error: see its log (`kubectl -n ingress-nginx logs "
            "deploy/ingress-nginx-controller`) for this request."
        )
    else:
        why = "the application answered it"
        fix = "The application failed the request: see its logs (`kubectl logs -n NS -l ...` "
        fix += f"for the pods behind {svc})."
    return failed(
        f"backend error: GET {request.url.url} -> {said} via {where}: {why}{ready}{rule}",
        remediation=fix,
        evidence=evidence,
        address=where,
    )


def _with_dns(
    finding: Finding, request: HttpRequest, lookup: ApiLookup, resolution: Resolution | None
) -> Finding:
    """Add what DNS says when the request went to the Ingress's address instead."""
    if resolution is None or resolution.kind == "literal" or request.address_from == "DNS":
        return finding
    host = request.url.host
    if not resolution.ok:
        problem = f"{host} does not resolve ({resolution.describe()})"
    elif request.address not in resolution.addresses:
        problem = (
            f"{host} resolves to {', '.join(resolution.addresses)}, not to the Ingress's "
            f"address {request.address}"
        )
    else:
        return finding
    evidence = {**finding.evidence, "dns_problem": problem}
    if finding.status is not Status.PASS:
        return Finding(
            finding.status,
            f"{finding.summary}; also {problem}",
            evidence,
            finding.remediation,
            finding.address,
            finding.facts,
        )
    if not resolution.ok:
        return failed(
            f"{problem}: clients cannot find the controller; through the Ingress's address "
            f"{request.address} the request works ({finding.summary})",
            remediation=f"Publish the name: an A record {host} -> {request.address} in the "
            "zone clients use (with external-dns, see its logs for this Ingress).",
            evidence=evidence,
            address=finding.address,
        )
    return warned(
        f"{finding.summary}; but {problem}",
        remediation=f"Clients that resolve {host} go to {', '.join(resolution.addresses)}. "
        f"Point the record at {request.address}, unless that address is a proxy or CDN in "
        "front of the controller.",
        evidence=evidence,
        address=finding.address,
        facts=finding.facts,
    )


# -- the check ------------------------------------------------------------------------------------


class IngressHttp(Check):
    """Sends the HTTP request of an Ingress run (a URL target, or --ingress NAME) to the
    controller with the right Host header and path: no rule matches (the API's rules, the
    controller's default-backend 404), backend Service has no endpoints (503), backend error
    (502, 504, other 5xx); evidence: the rule, the backend's endpoints, status and headers."""

    id = "ingress-http"
    hop = Hop.SERVICE
    order = 950
    provides = (facts.REACHABLE,)
    # Runs only in Ingress runs; the CLI leaves it out of Service runs.
    target_kinds: ClassVar[tuple[str, ...]] = ("ingress",)

    def run(self, ctx: RunContext) -> Finding:
        target = ctx.target
        if target.kind != "ingress":
            return skipped("not an Ingress run: give a URL as TARGET, or --ingress NAME")
        timeout = ctx.probe_timeout()
        with ThreadPoolExecutor(max_workers=1) as pool:
            early = None
            if target.url is not None:
                url = split_url(target.url)
                early = pool.submit(_resolve, ctx, url.host, timeout)
            lookup = _lookup(ctx, split_url(target.url) if target.url else None)
            if isinstance(lookup, Finding):
                return lookup
            if target.url is None:
                assert lookup.ingresses
                built = url_of(lookup.ingresses[0])
                if built is None:
                    raise Unavailable(
                        f"Ingress {target.namespace}/{target.ingress} has no rule with a plain "
                        "host to request: give the URL to try as TARGET"
                    )
                url = split_url(built)
                lookup = _with_match(ctx, lookup, url)
                early = pool.submit(_resolve, ctx, url.host, timeout)
            assert early is not None
            resolution = early.result()
        address, source = _controller_address(lookup, resolution, ctx.probe_timeout())
        if address is None:
            why = (
                "and the API gives no controller address for it (no rule matches, or the "
                "Ingress has no status.loadBalancer)"
                if lookup.used
                else f"and the API was not used ({lookup.problem})"
            )
            return failed(
                f"{url.host} does not resolve ({resolution.describe()}); {why}",
                evidence={"resolution": resolution.doc(), "api": lookup.doc()},
                remediation=f"Check the name: `dig {url.host}`; the Ingress's address is in "
                "`kubectl get ingress -A -o wide`.",
            )
        request = HttpRequest(url, address, source)
        timeout = ctx.probe_timeout()
        outcome = http_get(request, timeout)
        return classify(request, outcome, lookup, resolution, round(timeout, 2))


def _resolve(ctx: RunContext, host: str, timeout: float) -> Resolution:
    dns = ctx.settings.dns
    if dns is not None:
        return _exposure.resolve_dns(host, dns.host, dns.port, timeout)
    return _exposure.resolve_system(host, timeout)


def _lookup(ctx: RunContext, url: UrlParts | None) -> ApiLookup | Finding:
    """Return what the API says about the request; a Finding when --ingress names nothing."""
    from k8sreach.cluster import ClusterError

    target = ctx.target
    if not ctx.cluster_configured:
        if url is None:
            raise Unavailable(
                "--ingress NAME needs the cluster's API to find the Ingress: give --kubeconfig "
                "FILE, or the URL as TARGET"
            )
        return ApiLookup(False, problem="no kubeconfig: the rules and endpoints are not read")
    try:
        access = ctx.cluster()
        if target.ingress is not None:
            scope = f"Ingress {target.namespace}/{target.ingress}"
            try:
                ingresses = [api_call(access.get_ingress, target.namespace, target.ingress)]
            except ClusterError as exc:
                if exc.server_message == NO_SUCH_PATH:
                    raise Unavailable(str(exc)) from None
                return _missing_ingress(ctx)
        elif target.namespace:
            scope = f"namespace {target.namespace}"
            ingresses = api_call(access.list_ingresses, target.namespace)
        else:
            scope = "any namespace"
            ingresses = api_call(access.list_ingresses, None)
    except Unavailable as exc:
        if url is None:
            raise
        return ApiLookup(False, problem=exc.reason)
    except ClusterError as exc:
        if url is None:
            raise Unavailable(str(exc)) from None
        return ApiLookup(False, problem=str(exc))
    lookup = ApiLookup(True, scope, ingresses=tuple(ingresses))
    return _with_match(ctx, lookup, url) if url is not None else lookup


def _with_match(ctx: RunContext, lookup: ApiLookup, url: UrlParts) -> ApiLookup:
    notes: list[str] = []
    match = match_rule(lookup.ingresses, url.host, url.path, notes)
    for note in notes:
        LOG.debug("ingress rules: %s", note)
    backend = None
    if match is not None and match.service:
        backend = backend_state(ctx.cluster(), match.namespace, match.service, match.port)
    return ApiLookup(
        lookup.used, lookup.scope, lookup.problem, lookup.ingresses, match, backend, tuple(notes)
    )


def _missing_ingress(ctx: RunContext) -> Finding:
    from k8sreach.cluster import ClusterError

    target = ctx.target
    names: list[str] = []
    try:
        items = api_call(ctx.cluster().list_ingresses, target.namespace)
        names = [n for i in items if (n := as_str(as_dict(as_dict(i).get("metadata")).get("name")))]
    except (Unavailable, ClusterError) as exc:  # the names are hints; the finding stands
        LOG.debug("listing ingresses for hints failed: %s", exc)
    closest = difflib.get_close_matches(str(target.ingress), names, n=_CLOSEST, cutoff=0.6)
    where = f"{target.namespace}/{target.ingress}"
    summary = f"ingress {where} not found"
    if closest:
        summary += f"; closest: {', '.join(closest)}"
    elif names:
        summary += f" (there: {', '.join(sorted(names)[:10])})"
    else:
        summary += f"; namespace {target.namespace} has no Ingresses"
    return failed(
        summary,
        evidence={"found": False, "closest": closest, "ingresses_in_namespace": sorted(names)},
        remediation=f"List the Ingresses: `kubectl get ingress -n {target.namespace}` (or "
        "`-A` for every namespace).",
    )


def _controller_address(
    lookup: ApiLookup, resolution: Resolution, timeout: float
) -> tuple[str | None, str]:
    """Return where to send the request: the Ingress's address, else the resolved host."""
    if resolution.kind == "literal":
        return resolution.addresses[0], "the URL"
    for entry in lookup.match.addresses if lookup.match else ():
        if _exposure.is_address(entry):
            return entry, "the Ingress's status.loadBalancer"
        named = _exposure.resolve_system(entry, timeout)
        if named.addresses:
            return named.addresses[0], f"the Ingress's status.loadBalancer ({entry})"
    if resolution.addresses:
        return resolution.addresses[0], "DNS"
    return None, ""
