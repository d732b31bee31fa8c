"""A stand-in kube-apiserver for tests: HTTPS on loopback, the real API paths and object shapes.

`FakeApiServer` answers the read-only calls k8sreach makes (discovery, core v1 Services,
Endpoints, Pods and Nodes, discovery.k8s.io EndpointSlices, networking.k8s.io Ingresses and
Calico's CalicoNodeStatus) from objects held in memory, with the response bodies, Status errors
and headers a real kube-apiserver sends. TLS uses a throwaway CA made with the `openssl` command
at start (the venv has no `cryptography` package); clients authenticate with a bearer token or a
client certificate signed by that CA.

Calico: CalicoNodeStatus is served as the CRD `crd.projectcalico.org/v1` (present wherever
Calico keeps its data in the Kubernetes API) and, when asked for, as `projectcalico.org/v3`
(served only where the Calico API server is installed). Both carry the same spec and status,
taken from projectcalico/api `CalicoNodeStatus`; list items of the CRD keep `kind` and
`apiVersion`, as the API server does for custom resources, built-in lists drop them.

Run `python -m k8sreach.testing.kubeapi --help` to serve from a JSON file in another process
(for example inside a network namespace).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import http.server
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

LOG = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_USER = "system:serviceaccount:default:k8sreach"
CALICO_CRD = "crd.projectcalico.org/v1"
CALICO_V3 = "projectcalico.org/v3"
# A fixed creation time keeps the objects, and so expected test output, identical run to run.
CREATED = "2024-05-01T09:30:00Z"
SERVER_VERSION: Mapping[str, str] = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.4",
    "gitCommit": hashlib.sha1(b"k8sreach fake kube-apiserver").hexdigest(),
    "gitTreeState": "clean",
    "buildDate": "2024-08-14T19:04:20Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_IO_TIMEOUT = 10.0  # seconds a connection may stay silent before its thread gives up
_OPENSSL_TIMEOUT = 30.0
_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class _Resource:
    """One resource type the fake serves, as its discovery document describes it."""

    group_version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    crd: bool = False

    @property
    def group(self) -> str:
        """Return the API group, '' for the core group."""
        return self.group_version.rpartition("/")[0]

    @property
    def qualified(self) -> str:
        """Return the name errors use: 'services', 'ingresses.networking.k8s.io'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_RESOURCES = (
    _Resource("v1", "namespaces", "namespace", "Namespace", False, ("ns",)),
    _Resource("v1", "nodes", "node", "Node", False, ("no",)),
    _Resource("v1", "pods", "pod", "Pod", True, ("po",), ("all",)),
    _Resource("v1", "services", "service", "Service", True, ("svc",), ("all",)),
    _Resource("v1", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
    _Resource("discovery.k8s.io/v1", "endpointslices", "endpointslice", "EndpointSlice", True),
    _Resource("networking.k8s.io/v1", "ingresses", "ingress", "Ingress", True, ("ing",)),
    _Resource(
        CALICO_CRD, "caliconodestatuses", "caliconodestatus", "CalicoNodeStatus", False, crd=True
    ),
    _Resource(CALICO_V3, "caliconodestatuses", "caliconodestatus", "CalicoNodeStatus", False),
)
_KINDS = {r.kind: r for r in _RESOURCES}

# Fields each kind accepts in a fieldSelector, as the real server registers them.
_FIELDS = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered: what was asked, by whom, and the status code sent."""

    method: str
    path: str
    query: Mapping[str, str]
    user: str | None
    code: int


def status_body(code: int, message: str, details: Mapping[str, Any] | None = None) -> Obj:
    """Return a metav1 Status failure body as kube-apiserver sends it."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
    }
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return body


def object_uid(kind: str, namespace: str | None, name: str) -> str:
    """Return the uid the fake gives an object, so references between builders agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"k8sreach-fake/{kind}/{namespace or ''}/{name}"))


# ---------------------------------------------------------------------------------------------
# Label and field selectors


_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<value>\([^)]*\)|[-A-Za-z0-9_.]*)\s*)?$"
)
Selector = Callable[[Mapping[str, str]], bool]


def _split_requirements(text: str) -> list[str]:
    """Split a selector on the commas that are not inside 'in (...)' sets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> Selector:
    """Return a predicate over labels for a selector: a=b, a==b, a!=b, a in (x,y), a notin (x),
    a, !a. Raises ValueError with the server's wording for anything else."""
    checks: list[Selector] = []
    for part in _split_requirements(text):
        match = _REQUIREMENT.match(part)
        if match is None or (match["neg"] and match["op"]):
            raise ValueError(f"unable to parse requirement: found '{part.strip()}'")
        key, op, raw = match["key"], (match["op"] or "").strip(), match["value"]
        if not op:
            checks.append(_absent(key) if match["neg"] else _present(key))
        elif op in ("in", "notin"):
            if not raw or not raw.startswith("("):
                raise ValueError(f"unable to parse requirement: found '{part.strip()}'")
            values = frozenset(v.strip() for v in raw[1:-1].split(",") if v.strip())
            checks.append(_in(key, values, op == "in"))
        else:
            checks.append(_equals(key, raw or "", op != "!="))
    return lambda labels: all(check(labels) for check in checks)


def _present(key: str) -> Selector:
    return lambda labels: key in labels


def _absent(key: str) -> Selector:
    return lambda labels: key not in labels


def _in(key: str, values: frozenset[str], inside: bool) -> Selector:
    # notin, like !=, also matches objects without the label at all
    return lambda labels: (labels.get(key) in values) if inside else (labels.get(key) not in values)


def _equals(key: str, value: str, equal: bool) -> Selector:
    return lambda labels: (labels.get(key) == value) if equal else (labels.get(key) != value)


def _field_value(obj: Mapping[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def parse_field_selector(text: str, kind: str) -> Callable[[Mapping[str, Any]], bool]:
    """Return a predicate for a fieldSelector (=, ==, != on the fields the kind supports)."""
    allowed = ("metadata.name", "metadata.namespace", *_FIELDS.get(kind, ()))
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in _split_requirements(text):
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(\S*)\s*$", part)
        if match is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part.strip()}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise ValueError(f"field label not supported: {path}")
        checks.append(_field_equals(path, value, op != "!="))
    return lambda obj: all(check(obj) for check in checks)


def _field_equals(path: str, value: str, equal: bool) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: (_field_value(obj, path) == value) == equal


# ---------------------------------------------------------------------------------------------
# Certificates


_PKI_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {sans}
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class _Pki:
    """A throwaway CA in a private directory; it signs the server's and clients' certificates."""

    def __init__(self, directory: Path, sans: Sequence[str]) -> None:
        self.dir = directory
        (directory / "pki.cnf").write_text(_PKI_CONFIG.format(sans=",".join(sans)))
        self._openssl(
            "req",
            "-x509",
            "-new",
            *self._new_key("ca"),
            "-days",
            "2",
            "-subj",
            "/CN=k8sreach-fake-ca",
            "-config",
            "pki.cnf",
            "-extensions",
            "ca_ext",
            "-out",
            "ca.crt",
        )
        self.ca_pem = (directory / "ca.crt").read_bytes()
        self.server_cert, self.server_key = self.issue("server", "/CN=kube-apiserver", "server_ext")
        self._clients = 0

    @staticmethod
    def _new_key(name: str) -> list[str]:
        # EC keys: a P-256 key takes milliseconds where RSA 2048 takes a noticeable pause
        return [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            f"{name}.key",
        ]

    def issue(self, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
        """Return (certificate, key) paths of a new key pair signed by the CA."""
        self._openssl(
            "req",
            "-new",
            *self._new_key(name),
            "-subj",
            subject,
            "-config",
            "pki.cnf",
            "-out",
            f"{name}.csr",
        )
        self._openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(secrets.randbits(63)),
            "-days",
            "2",
            "-extfile",
            "pki.cnf",
            "-extensions",
            extensions,
            "-out",
            f"{name}.crt",
        )
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def issue_client(self, user: str, groups: Sequence[str]) -> tuple[bytes, bytes]:
        """Return (certificate PEM, key PEM) for a client whose CN is the user name."""
        self._clients += 1
        subject = "".join(f"/O={g}" for g in groups) + f"/CN={user}"
        cert, key = self.issue(f"client-{self._clients}", subject, "client_ext")
        return cert.read_bytes(), key.read_bytes()

    def _openssl(self, *args: str) -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("the fake API server needs the openssl command to make its CA")
        done = subprocess.run(
            ["openssl", *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=_OPENSSL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


# ---------------------------------------------------------------------------------------------
# The server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server: _Server

    def do_GET(self) -> None:
        self.server.api._handle(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("fake API server: %s " + format, self.client_address[0], *args)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, api: FakeApiServer, tls: ssl.SSLContext, sock: socket.socket | None) -> None:
        self.api = api
        self.tls = tls
        self.address_family = socket.AF_INET6 if ":" in api.host else socket.AF_INET
        self.connections: set[ssl.SSLSocket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((api.host, api.port), _Handler, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket = sock
            sock.listen(self.request_queue_size)
            self.server_address = sock.getsockname()

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's FQDN; nothing here needs it
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # connects and never speaks cannot stall the accept loop.
        request.settimeout(_IO_TIMEOUT)
        # headers and body go out as two writes; without NODELAY, Nagle and the client's
        # delayed ACK add 40 ms to every keep-alive request
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as exc:
            LOG.debug("fake API server: TLS handshake from %s failed: %s", client_address, exc)
            return
        with self.connections_lock:
            self.connections.add(conn)
        try:
            _Handler(conn, client_address, self)
        except OSError as exc:
            LOG.debug("fake API server: connection from %s ended: %s", client_address, exc)
        finally:
            with self.connections_lock:
                self.connections.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        """Drop every open client connection, as a stopped API server would."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeApiServer:
    """A threaded HTTPS kube-apiserver stand-in serving in-memory objects (context manager)."""

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        user: str = DEFAULT_USER,
        anonymous: bool = False,
        calico_api: Sequence[str] = (CALICO_CRD,),
        extra_sans: Sequence[str] = (),
        sock: socket.socket | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.user = user
        self.anonymous = anonymous
        self.calico_api = tuple(calico_api)
        self.extra_sans = tuple(extra_sans)
        # Set to True to answer 401 to every credential, as for an expired token or cert.
        self.credentials_expired = False
        # Seconds to wait before answering each request (a slow API server).
        self.response_delay = 0.0
        self._sock = sock
        self._tokens: dict[str, str] = {self.token: user}
        self._forbidden: list[tuple[str, str, str | None]] = []
        self._failures: list[tuple[str, int, str]] = []
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._resource_version = 1000
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: Path | None = None
        self._pki: _Pki | None = None
        self.load(objects)

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeApiServer:
        """Make the CA and certificates, bind, and serve in a daemon thread; return self."""
        if self._httpd is not None:
            raise RuntimeError("the fake API server is already running")
        self._stopping.clear()
        self._tmp = Path(tempfile.mkdtemp(prefix="k8sreach-kubeapi-"))
        try:
            self._pki = _Pki(self._tmp, self._sans())
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            tls.load_cert_chain(self._pki.server_cert, self._pki.server_key)
            tls.load_verify_locations(cadata=self._pki.ca_pem.decode())
            tls.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is one way to log in
            self._httpd = _Server(self, tls, self._sock)
            self.port = int(self._httpd.server_address[1])
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-kube-apiserver:{self.port}",
                daemon=True,
            )
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        LOG.debug("fake API server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and delete the certificates; safe to repeat."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            if self._thread is not None and self._thread.is_alive():
                httpd.shutdown()
                self._thread.join(timeout=5)
            httpd.close_connections()
            httpd.server_close()
        self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def url(self) -> str:
        """Return the https URL clients use, e.g. https://127.0.0.1:40123."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        """Return the PEM of the CA that signed the server certificate."""
        if self._pki is None:
            raise RuntimeError("start the fake API server first")
        return self._pki.ca_pem

    def _sans(self) -> list[str]:
        names = [
            "IP:127.0.0.1",
            "IP:::1",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
        ]
        for extra in (self.host, *self.extra_sans):
            try:
                address = ipaddress.ip_address(extra)
            except ValueError:
                entry = f"DNS:{extra}"
            else:
                if address.is_unspecified:
                    continue
                entry = f"IP:{address}"
            if entry not in names:
                names.append(entry)
        return names

    # -- objects and behaviour -----------------------------------------------------------------

    def load(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Add (or replace) every object; see `add`."""
        for obj in objects:
            self.add(obj)

    def add(self, obj: Mapping[str, Any]) -> Obj:
        """Store a copy of an object as the server would after a create; return the copy."""
        stored = copy.deepcopy(dict(obj))
        kind = stored.get("kind")
        resource = _KINDS.get(str(kind))
        if resource is None:
            raise ValueError(
                f"the fake API server does not serve kind {kind!r}; "
                f"it serves {', '.join(sorted(_KINDS))}"
            )
        meta = dict(stored.get("metadata") or {})
        name = meta.get("name")
        if not name:
            raise ValueError(f"a {kind} needs metadata.name")
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        namespace = meta.get("namespace", "")
        with self._lock:
            self._resource_version += 1
            meta["resourceVersion"] = str(self._resource_version)
            meta.setdefault("uid", object_uid(str(kind), namespace, name))
            meta.setdefault("creationTimestamp", CREATED)
            meta.setdefault("managedFields", [_managed_fields(resource)])
            stored["metadata"] = _ordered_meta(meta)
            self._objects[(str(kind), namespace, name)] = stored
        return copy.deepcopy(stored)

    def remove(self, kind: str, name: str, namespace: str | None = "default") -> None:
        """Delete one object; a missing one is not an error."""
        key_ns = namespace if _KINDS[kind].namespaced else ""
        with self._lock:
            self._objects.pop((kind, key_ns or "", name), None)

    def add_token(self, token: str, user: str) -> None:
        """Accept another bearer token, authenticating as the given user."""
        self._tokens[token] = user

    def issue_client_cert(
        self, user: str = "kubernetes-admin", groups: Sequence[str] = ("system:masters",)
    ) -> tuple[bytes, bytes]:
        """Return (certificate PEM, key PEM) the server accepts as the given user."""
        if self._pki is None:
            raise RuntimeError("start the fake API server first")
        return self._pki.issue_client(user, groups)

    def forbid(self, verb: str = "*", resource: str = "*", namespace: str | None = None) -> None:
        """Answer 403 to verb ('get', 'list' or '*') on a resource plural, in one namespace
        or (None) everywhere."""
        self._forbidden.append((verb, resource, namespace))

    def allow_all(self) -> None:
        """Drop every rule set by `forbid`."""
        self._forbidden.clear()

    def fail(self, code: int, message: str, path_prefix: str = "/") -> None:
        """Answer every authenticated request under path_prefix with this Status code."""
        self._failures.append((path_prefix, code, message))

    def clear_failures(self) -> None:
        """Drop every failure set by `fail`."""
        self._failures.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return the requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        *,
        context: str = "lab",
        token: str | None = None,
        client_cert: bool = False,
        cert_user: str = "kubernetes-admin",
        namespace: str | None = "default",
        server: str | None = None,
    ) -> Path:
        """Write a kubeconfig for this server; token None means the server's own token unless
        client_cert is set. `server` overrides the URL (e.g. to point at a closed port)."""
        cert_pem = key_pem = None
        if client_cert:
            cert_pem, key_pem = self.issue_client_cert(cert_user)
        elif token is None:
            token = self.token
        return write_kubeconfig(
            path,
            server=server or self.url,
            ca_pem=self.ca_pem,
            context=context,
            token=token,
            client_cert_pem=cert_pem,
            client_key_pem=key_pem,
            namespace=namespace,
        )

    # -- answering -----------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if self.response_delay > 0:
            self._stopping.wait(self.response_delay)
        user = self._authenticate(handler)
        code, body = self._answer(handler.command, path, query, user)
        with self._lock:
            self._requests.append(RecordedRequest(handler.command, path, query, user, code))
        self._send(handler, code, body)

    def _authenticate(self, handler: _Handler) -> str | None:
        if self.credentials_expired:
            return None
        cert = handler.connection.getpeercert()  # type: ignore[attr-defined]
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return str(value)
        header = handler.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            presented = header[7:].strip().encode()
            for token, user in self._tokens.items():
                if hmac.compare_digest(token.encode(), presented):
                    return user
            return None
        if header:
            return None
        return "system:anonymous" if self.anonymous else None

    def _answer(
        self, method: str, path: str, query: Mapping[str, str], user: str | None
    ) -> tuple[int, Obj | str]:
        if user is None:
            return 401, status_body(401, "Unauthorized")
        if method not in ("GET", "HEAD"):
            return 405, status_body(
                405, "the server does not allow this method on the requested resource"
            )
        for prefix, code, message in self._failures:
            if path.startswith(prefix):
                return code, status_body(code, message, {})
        parts = [p for p in path.split("/") if p]
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return 200, "ok"
        if parts == ["version"]:
            return 200, dict(SERVER_VERSION)
        if parts == ["api"]:
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                ],
            }
        if parts == ["apis"]:
            return 200, self._group_list()
        if parts[:1] == ["api"] and len(parts) >= 2:
            group_version, rest = parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return _no_such_path()
        served = [r for r in self._served() if r.group_version == group_version]
        if not served:
            return _no_such_path()
        if not rest:
            return 200, _resource_list(group_version, served)
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource = next((r for r in served if r.plural == rest[0]), None)
        name = rest[1] if len(rest) == 2 else None
        if (
            resource is None
            or len(rest) > 2
            or (namespace is not None and not resource.namespaced)
            or (name is not None and namespace is None and resource.namespaced)
        ):
            return _no_such_path()
        verb = "get" if name is not None else "list"
        if self._is_forbidden(verb, resource.plural, namespace):
            return 403, _forbidden(user, verb, resource, namespace, name)
        if name is not None:
            return self._get(resource, namespace, name)
        return self._list(resource, namespace, query)

    def _served(self) -> list[_Resource]:
        return [
            r
            for r in _RESOURCES
            if r.kind != "CalicoNodeStatus" or r.group_version in self.calico_api
        ]

    def _group_list(self) -> Obj:
        groups: list[Obj] = []
        for resource in self._served():
            if not resource.group or any(g["name"] == resource.group for g in groups):
                continue
            version = {
                "groupVersion": resource.group_version,
                "version": resource.group_version.rpartition("/")[2],
            }
            groups.append(
                {"name": resource.group, "versions": [version], "preferredVersion": version}
            )
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _is_forbidden(self, verb: str, plural: str, namespace: str | None) -> bool:
        return any(
            v in ("*", verb) and r in ("*", plural) and (ns is None or ns == namespace)
            for v, r, ns in self._forbidden
        )

    def _get(self, resource: _Resource, namespace: str | None, name: str) -> tuple[int, Obj]:
        with self._lock:
            stored = self._objects.get((resource.kind, namespace or "", name))
            obj = copy.deepcopy(stored) if stored is not None else None
        if obj is None:
            details = {
                "name": name,
                **({"group": resource.group} if resource.group else {}),
                "kind": resource.plural,
            }
            return 404, status_body(404, f'{resource.qualified} "{name}" not found', details)
        obj["apiVersion"] = resource.group_version
        return 200, _kind_first(obj)

    def _list(
        self, resource: _Resource, namespace: str | None, query: Mapping[str, str]
    ) -> tuple[int, Obj]:
        try:
            labels_match = parse_label_selector(query.get("labelSelector", ""))
            fields_match = parse_field_selector(query.get("fieldSelector", ""), resource.kind)
        except ValueError as exc:
            return 400, status_body(400, str(exc))
        with self._lock:
            version = str(self._resource_version)
            found = [
                copy.deepcopy(o)
                for (kind, ns, _), o in sorted(self._objects.items())
                if kind == resource.kind and (namespace is None or ns == namespace)
            ]
        items = []
        for obj in found:
            if not labels_match(obj["metadata"].get("labels") or {}) or not fields_match(obj):
                continue
            if resource.crd:
                obj["apiVersion"] = resource.group_version
                obj = _kind_first(obj)
            else:
                # built-in list items carry no kind/apiVersion; the list says it once
                obj.pop("kind", None)
                obj.pop("apiVersion", None)
            items.append(obj)
        return 200, {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.group_version,
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _send(self, handler: _Handler, code: int, body: Obj | str) -> None:
        if isinstance(body, str):
            data, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
            content_type = "application/json"
        handler.log_request(code)
        handler.send_response_only(code)
        handler.send_header("Audit-Id", str(uuid.uuid4()))
        handler.send_header("Cache-Control", "no-cache, private")
        handler.send_header("Content-Type", content_type)
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.send_header("Date", handler.date_time_string())
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)


def _no_such_path() -> tuple[int, Obj]:
    return 404, status_body(404, "the server could not find the requested resource", {})


def _forbidden(
    user: str, verb: str, resource: _Resource, namespace: str | None, name: str | None
) -> Obj:
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource '
        f'"{resource.plural}" in API group "{resource.group}" {scope}'
    )
    details: Obj = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return status_body(403, message, details)


def _resource_list(group_version: str, resources: Sequence[_Resource]) -> Obj:
    entries = []
    for r in resources:
        entry: Obj = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(_VERBS),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        digest = hashlib.sha256(f"{group_version}/{r.plural}".encode()).digest()[:8]
        entry["storageVersionHash"] = base64.b64encode(digest).decode()
        entries.append(entry)
    body: Obj = {"kind": "APIResourceList"}
    if "/" in group_version:
        body["apiVersion"] = "v1"  # the core group's document has none
    body["groupVersion"] = group_version
    body["resources"] = entries
    return body


def _kind_first(obj: Obj) -> Obj:
    head = {"kind": obj.pop("kind"), "apiVersion": obj.pop("apiVersion")}
    return {**head, **obj}


_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
)


def _ordered_meta(meta: Obj) -> Obj:
    ordered = {k: meta[k] for k in _META_ORDER if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    return ordered


def _managed_fields(resource: _Resource) -> Obj:
    manager = {
        "Endpoints": "kube-controller-manager",
        "EndpointSlice": "kube-controller-manager",
        "Pod": "kubelet",
        "Node": "kubelet",
        "CalicoNodeStatus": "calico-node",
    }
    return {
        "manager": manager.get(resource.kind, "kubectl-client-side-apply"),
        "operation": "Update",
        "apiVersion": resource.group_version,
        "time": CREATED,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {}}},
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    *,
    server: str,
    ca_pem: bytes | None,
    context: str = "lab",
    token: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    namespace: str | None = "default",
) -> Path:
    """Write a kubeconfig (mode 0600) with one cluster, user and context; return its path."""
    # PyYAML comes with the kubernetes client; only tests and the lab write kubeconfigs
    import yaml  # type: ignore[import-untyped]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    cluster: Obj = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = b64(ca_pem)
    user: Obj = {}
    if client_cert_pem is not None and client_key_pem is not None:
        user["client-certificate-data"] = b64(client_cert_pem)
        user["client-key-data"] = b64(client_key_pem)
    if token is not None:
        user["token"] = token
    ctx: Obj = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
    if namespace:
        ctx["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
        "users": [{"name": f"{context}-user", "user": user}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, default_flow_style=False, sort_keys=False)
    return target


# ---------------------------------------------------------------------------------------------
# Object builders: each returns a whole object as `kubectl get -o json` shows it; the server
# adds uid, resourceVersion and managedFields when it stores one.


def _meta(
    name: str,
    namespace: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **extra: Any,
) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = CREATED
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    meta.update(extra)
    return meta


def _owner(kind: str, name: str, namespace: str | None, api_version: str = "v1") -> Obj:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": object_uid(kind, namespace, name),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def namespace(name: str, *, labels: Mapping[str, str] | None = None) -> Obj:
    """Return an Active Namespace."""
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": _meta(name, None, {"kubernetes.io/metadata.name": name, **(labels or {})}),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def service_port(
    port: int,
    *,
    name: str | None = None,
    target_port: int | str | None = None,
    protocol: str = "TCP",
    node_port: int | None = None,
    app_protocol: str | None = None,
) -> Obj:
    """Return one entry of a Service's spec.ports (targetPort defaults to port)."""
    entry: Obj = {}
    if name:
        entry["name"] = name
    entry["protocol"] = protocol
    if app_protocol:
        entry["appProtocol"] = app_protocol
    entry["port"] = port
    entry["targetPort"] = port if target_port is None else target_port
    if node_port is not None:
        entry["nodePort"] = node_port
    return entry


def service(
    name: str,
    namespace: str = "default",
    *,
    cluster_ip: str | None = "10.96.0.10",
    ports: Sequence[int | Mapping[str, Any]] = (),
    selector: Mapping[str, str] | None = None,
    type: str = "ClusterIP",  # the API field name
    headless: bool = False,
    external_name: str | None = None,
    node_ports: Mapping[int, int] | None = None,
    load_balancer_ips: Sequence[str] = (),
    external_ips: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    publish_not_ready_addresses: bool = False,
    external_traffic_policy: str = "Cluster",
    internal_traffic_policy: str = "Cluster",
) -> Obj:
    """Return a Service; ports are ints or `service_port` dicts, node_ports maps port to
    nodePort (others are allocated), external_name makes an ExternalName Service."""
    if external_name is not None:
        type = "ExternalName"
    entries = [service_port(p) if isinstance(p, int) else dict(p) for p in ports]
    if type in ("NodePort", "LoadBalancer"):
        for entry in entries:
            if "nodePort" not in entry:
                wanted = (node_ports or {}).get(entry["port"])
                entry["nodePort"] = (
                    wanted
                    or 30000 + zlib.crc32(f"{namespace}/{name}/{entry['port']}".encode()) % 2768
                )
    spec: Obj = {}
    if entries:
        spec["ports"] = entries
    if selector:
        spec["selector"] = dict(selector)
    if type != "ExternalName":
        address = "None" if headless else cluster_ip
        spec["clusterIP"] = address
        spec["clusterIPs"] = [address]
    spec["type"] = type
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    spec["sessionAffinity"] = "None"
    if external_name is not None:
        spec["externalName"] = external_name
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = external_traffic_policy
    if publish_not_ready_addresses:
        spec["publishNotReadyAddresses"] = True
    if type != "ExternalName":
        spec["ipFamilies"] = ["IPv6" if ":" in str(cluster_ip) else "IPv4"]
        spec["ipFamilyPolicy"] = "SingleStack"
    if type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    if type != "ExternalName":
        spec["internalTrafficPolicy"] = internal_traffic_policy
    balancer: Obj = {}
    if load_balancer_ips:
        balancer["ingress"] = [{"ip": ip, "ipMode": "VIP"} for ip in load_balancer_ips]
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels),
        "spec": spec,
        "status": {"loadBalancer": balancer},
    }


@dataclass(frozen=True)
class Backend:
    """One address behind a Service, as Endpoints and EndpointSlices both list it."""

    ip: str
    pod: str | None = None
    node: str | None = None
    ready: bool = True
    serving: bool | None = None  # None: same as ready
    terminating: bool = False
    hostname: str | None = None
    zone: str | None = None


def _port_entries(ports: Sequence[int | Mapping[str, Any]], unnamed: str | None) -> list[Obj]:
    entries = []
    for p in ports:
        spec = {"port": p} if isinstance(p, int) else dict(p)
        entry: Obj = {}
        name = spec.get("name", unnamed)
        if name is not None:
            entry["name"] = name
        entry["port"] = spec["port"]
        entry["protocol"] = spec.get("protocol", "TCP")
        if spec.get("appProtocol"):
            entry["appProtocol"] = spec["appProtocol"]
        entries.append(entry)
    return entries


def _pod_ref(namespace: str, pod: str) -> Obj:
    return {
        "kind": "Pod",
        "namespace": namespace,
        "name": pod,
        "uid": object_uid("Pod", namespace, pod),
    }


def endpoints(
    name: str,
    namespace: str = "default",
    *,
    backends: Sequence[Backend] = (),
    ports: Sequence[int | Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """Return the v1 Endpoints the endpoints controller writes: ready backends under
    addresses, unready under notReadyAddresses, terminating ones left out."""
    ready: list[Obj] = []
    not_ready: list[Obj] = []
    for b in backends:
        if b.terminating:
            continue
        address: Obj = {"ip": b.ip}
        if b.hostname:
            address["hostname"] = b.hostname
        if b.node:
            address["nodeName"] = b.node
        if b.pod:
            address["targetRef"] = _pod_ref(namespace, b.pod)
        (ready if b.ready else not_ready).append(address)
    obj: Obj = {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": _meta(
            name, namespace, labels, {"endpoints.kubernetes.io/last-change-trigger-time": CREATED}
        ),
    }
    if ready or not_ready:
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports:
            subset["ports"] = _port_entries(ports, None)
        obj["subsets"] = [subset]
    return obj


_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the characters generated names draw from


def _suffix(seed: str) -> str:
    number = zlib.crc32(seed.encode())
    return "".join(_NAME_ALPHABET[(number >> (5 * i)) % len(_NAME_ALPHABET)] for i in range(5))


def endpoint_slice(
    service: str,
    namespace: str = "default",
    *,
    backends: Sequence[Backend] = (),
    ports: Sequence[int | Mapping[str, Any]] = (),
    name: str | None = None,
    address_type: str = "IPv4",
    managed_by: str = "endpointslice-controller.k8s.io",
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """Return a discovery.k8s.io/v1 EndpointSlice for a Service; with no backends (or ports)
    the field is null, as the API server sends it."""
    all_labels = {
        "endpointslice.kubernetes.io/managed-by": managed_by,
        "kubernetes.io/service-name": service,
        **(labels or {}),
    }
    meta = _meta(
        name or f"{service}-{_suffix(namespace + '/' + service)}",
        namespace,
        all_labels,
        {"endpoints.kubernetes.io/last-change-trigger-time": CREATED},
        ownerReferences=[_owner("Service", service, namespace)],
    )
    if name is None:
        meta = {"name": meta.pop("name"), "generateName": f"{service}-", **meta}
    entries = []
    for b in backends:
        serving = b.ready if b.serving is None else b.serving
        entry: Obj = {
            "addresses": [b.ip],
            "conditions": {
                "ready": b.ready and not b.terminating,
                "serving": serving,
                "terminating": b.terminating,
            },
        }
        if b.hostname:
            entry["hostname"] = b.hostname
        if b.pod:
            entry["targetRef"] = _pod_ref(namespace, b.pod)
        if b.node:
            entry["nodeName"] = b.node
        if b.zone:
            entry["zone"] = b.zone
        entries.append(entry)
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": meta,
        "addressType": address_type,
        "endpoints": entries or None,
        "ports": _port_entries(ports, "") or None,
    }


def pod(
    name: str,
    namespace: str = "default",
    *,
    ip: str | None = "10.244.1.10",
    node: str | None = "node-1",
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    phase: str = "Running",
    ports: Sequence[int | Mapping[str, Any]] = (),
    containers: Sequence[str] = ("app",),
    host_ip: str | None = None,
    terminating: bool = False,
    image: str = "registry.k8s.io/e2e-test-images/agnhost:2.47",
) -> Obj:
    """Return a Pod; ports (ints or {name, containerPort|port, protocol}) go on the first
    container, Ready and ContainersReady follow `ready`, a Pending pod has no IP."""
    container_ports = []
    for p in ports:
        given: Obj = {"containerPort": p} if isinstance(p, int) else dict(p)
        entry: Obj = {}
        if given.get("name"):
            entry["name"] = given["name"]
        entry["containerPort"] = given.get("containerPort", given.get("port"))
        entry["protocol"] = given.get("protocol", "TCP")
        container_ports.append(entry)
    specs = []
    for i, cname in enumerate(containers):
        container: Obj = {"name": cname, "image": image}
        if i == 0 and container_ports:
            container["ports"] = container_ports
        container.update(
            {
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
        )
        specs.append(container)
    extra: Obj = {}
    if terminating:
        extra = {"deletionTimestamp": CREATED, "deletionGracePeriodSeconds": 30}
    spec: Obj = {
        "containers": specs,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
    }
    if node:
        spec["nodeName"] = node
    spec.update(
        {
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
    )
    running = phase == "Running" and node is not None
    status: Obj = {
        "phase": phase,
        "conditions": _pod_conditions(node, running and ready, running, containers),
    }
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if ip and node:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if node:
        status["startTime"] = CREATED
        status["containerStatuses"] = [
            _container_status(c, image, running, ready) for c in containers
        ]
    status["qosClass"] = "BestEffort"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels, None, **extra),
        "spec": spec,
        "status": status,
    }


def _condition(kind: str, ok: bool, reason: str | None = None, message: str | None = None) -> Obj:
    cond: Obj = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": CREATED,
    }
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def _pod_conditions(
    node: str | None, ready: bool, running: bool, containers: Sequence[str]
) -> list[Obj]:
    if node is None:
        return [
            _condition(
                "PodScheduled",
                False,
                "Unschedulable",
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
            )
        ]
    unready = f"containers with unready status: [{' '.join(containers)}]"
    return [
        _condition("PodReadyToStartContainers", running),
        _condition("Initialized", True),
        _condition("Ready", ready, "ContainersNotReady", unready),
        _condition("ContainersReady", ready, "ContainersNotReady", unready),
        _condition("PodScheduled", True),
    ]


def _container_status(name: str, image: str, running: bool, ready: bool) -> Obj:
    digest = hashlib.sha256(image.encode()).hexdigest()
    state: Obj = (
        {"running": {"startedAt": CREATED}}
        if running
        else {"waiting": {"reason": "ContainerCreating"}}
    )
    return {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": running and ready,
        "restartCount": 0,
        "image": image,
        "imageID": f"{image.rpartition(':')[0]}@sha256:{digest}",
        "containerID": f"containerd://{hashlib.sha256(name.encode()).hexdigest()}",
        "started": running,
    }


def node(
    name: str,
    *,
    internal_ip: str,
    hostname: str | None = None,
    external_ip: str | None = None,
    ready: bool | None = True,
    pod_cidr: str | None = None,
    labels: Mapping[str, str] | None = None,
    control_plane: bool = False,
    unschedulable: bool = False,
    kubelet_version: str = "v1.30.4",
) -> Obj:
    """Return a Node; ready None means the kubelet stopped reporting (status Unknown)."""
    all_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": hostname or name,
        "kubernetes.io/os": "linux",
    }
    if control_plane:
        all_labels["node-role.kubernetes.io/control-plane"] = ""
    all_labels.update(labels or {})
    spec: Obj = {}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if unschedulable:
        spec["unschedulable"] = True
    if control_plane:
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    addresses = [{"type": "InternalIP", "address": internal_ip}]
    if external_ip:
        addresses.append({"type": "ExternalIP", "address": external_ip})
    addresses.append({"type": "Hostname", "address": hostname or name})
    pressure = [
        {
            "type": t,
            "status": "False",
            "lastHeartbeatTime": CREATED,
            "lastTransitionTime": CREATED,
            "reason": f"KubeletHas{r}",
            "message": m,
        }
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    if ready is None:
        state = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    elif ready:
        state = ("True", "KubeletReady", "kubelet is posting ready status")
    else:
        state = (
            "False",
            "KubeletNotReady",
            "container runtime network not ready: "
            "NetworkReady=false reason:NetworkPluginNotReady message:Network plugin "
            "returns error: cni plugin not initialized",
        )
    ready_condition = {
        "type": "Ready",
        "status": state[0],
        "lastHeartbeatTime": CREATED,
        "lastTransitionTime": CREATED,
        "reason": state[1],
        "message": state[2],
    }
    resources = {
        "cpu": "4",
        "ephemeral-storage": "101430960Ki",
        "memory": "16375780Ki",
        "pods": "110",
    }
    machine = uuid.uuid5(uuid.NAMESPACE_DNS, name).hex
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": _meta(
            name,
            None,
            all_labels,
            {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        ),
        "spec": spec,
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [*pressure, ready_condition],
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": machine,
                "systemUUID": str(uuid.UUID(machine)),
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "kernelVersion": "6.1.0-21-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.18",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def ingress_path(
    service: str, port: int | str, *, path: str = "/", path_type: str = "Prefix"
) -> Obj:
    """Return one HTTP path of an Ingress rule; a str port is a Service port name."""
    port_ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": port_ref}},
    }


def ingress_rule(host: str | None, paths: Sequence[Mapping[str, Any]]) -> Obj:
    """Return one Ingress rule; host None matches every host."""
    rule: Obj = {"host": host} if host else {}
    rule["http"] = {"paths": [dict(p) for p in paths]}
    return rule


def ingress(
    name: str,
    namespace: str = "default",
    *,
    host: str | None = None,
    service: str | None = None,
    port: int | str | None = None,
    path: str = "/",
    path_type: str = "Prefix",
    rules: Sequence[Mapping[str, Any]] | None = None,
    ingress_class: str | None = "nginx",
    tls_hosts: Sequence[str] = (),
    tls_secret: str | None = None,
    load_balancer_ips: Sequence[str] = (),
    load_balancer_hostnames: Sequence[str] = (),
    default_backend: tuple[str, int | str] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """Return a networking.k8s.io/v1 Ingress: one rule from host/service/port, or `rules`
    built with `ingress_rule`; status.loadBalancer lists the controller's addresses."""
    spec: Obj = {}
    if ingress_class:
        spec["ingressClassName"] = ingress_class
    if default_backend is not None:
        spec["defaultBackend"] = ingress_path(*default_backend)["backend"]
    if tls_hosts:
        spec["tls"] = [{"hosts": list(tls_hosts), "secretName": tls_secret or f"{name}-tls"}]
    if rules is None and service is not None:
        if port is None:
            raise ValueError("an Ingress backend needs a Service port")
        rules = [ingress_rule(host, [ingress_path(service, port, path=path, path_type=path_type)])]
    if rules:
        spec["rules"] = [dict(r) for r in rules]
    balancer: Obj = {}
    entries = [{"ip": ip} for ip in load_balancer_ips]
    entries += [{"hostname": h} for h in load_balancer_hostnames]
    if entries:
        balancer["ingress"] = entries
    return {
        "kind": "Ingress",
        "apiVersion": "networking.k8s.io/v1",
        "metadata": _meta(name, namespace, labels, annotations),
        "spec": spec,
        "status": {"loadBalancer": balancer},
    }


def bgp_peer(
    peer_ip: str, *, type: str = "NodeMesh", state: str = "Established", since: str = "09:30:04"
) -> Obj:
    """Return one entry of CalicoNodeStatus status.bgp.peersV4/peersV6 (type NodeMesh,
    NodePeer or GlobalPeer; state Idle, Connect, Active, OpenSent, OpenConfirm, Established,
    Close; since as BIRD prints it)."""
    return {"peerIP": peer_ip, "type": type, "state": state, "since": since}


def calico_route(
    destination: str,
    *,
    gateway: str,
    interface: str,
    type: str = "FIB",
    source_type: str = "NodeMesh",
    peer_ip: str | None = None,
) -> Obj:
    """Return one entry of CalicoNodeStatus status.routes.routesV4."""
    learned: Obj = {"sourceType": source_type}
    if peer_ip:
        learned["peerIP"] = peer_ip
    return {
        "type": type,
        "destination": destination,
        "gateway": gateway,
        "interface": interface,
        "learnedFrom": learned,
    }


def calico_node_status(
    name: str,
    *,
    node: str | None = None,
    peers: Sequence[Mapping[str, Any]] = (),
    peers_v6: Sequence[Mapping[str, Any]] = (),
    routes: Sequence[Mapping[str, Any]] = (),
    bird_state: str = "Ready",
    router_id: str | None = None,
    update_period_seconds: int = 10,
    last_updated: str | None = CREATED,
) -> Obj:
    """Return a CalicoNodeStatus (cluster-scoped) as calico-node fills it in; counts of
    established peers are derived from `peers`. last_updated None: not reported yet."""

    def counts(entries: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        up = sum(1 for p in entries if p.get("state") == "Established")
        return up, len(entries) - up

    up4, down4 = counts(peers)
    up6, down6 = counts(peers_v6)
    bgp: Obj = {
        "numberEstablishedV4": up4,
        "numberNotEstablishedV4": down4,
        "numberEstablishedV6": up6,
        "numberNotEstablishedV6": down6,
    }
    if peers:
        bgp["peersV4"] = [dict(p) for p in peers]
    if peers_v6:
        bgp["peersV6"] = [dict(p) for p in peers_v6]
    bird: Obj = {"state": bird_state, "version": "v0.3.3+2.0.14-calico"}
    if router_id:
        bird["routerID"] = router_id
    bird.update(
        {"lastBootTime": "2024-05-01 09:29:58", "lastReconfigurationTime": "2024-05-01 09:29:58"}
    )
    status: Obj = {
        "lastUpdated": last_updated,
        "agent": {"birdV4": bird, "birdV6": {}},
        "bgp": bgp,
        "routes": {"routesV4": [dict(r) for r in routes]} if routes else {},
    }
    return {
        "kind": "CalicoNodeStatus",
        "apiVersion": CALICO_CRD,
        "metadata": _meta(name, None),
        "spec": {
            "node": node or name,
            "classes": ["Agent", "BGP", "Routes"],
            "updatePeriodSeconds": update_period_seconds,
        },
        "status": status,
    }


# ---------------------------------------------------------------------------------------------
# Command line: serve from a JSON file in a process of its own (the lab runs it in a netns)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve objects from a JSON file until SIGTERM/SIGINT or --max-seconds; return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m k8sreach.testing.kubeapi",
        description="Serve a fake kube-apiserver over HTTPS.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--objects", help="JSON file: a list of objects or a List with items")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--context", default="lab")
    parser.add_argument(
        "--calico-api",
        action="append",
        choices=(CALICO_CRD, CALICO_V3),
        help="Calico API group/version to serve (repeatable)",
    )
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)

    objects: list[Obj] = []
    if args.objects:
        loaded = json.loads(Path(args.objects).read_text())
        objects = loaded.get("items", []) if isinstance(loaded, dict) else list(loaded)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    api = FakeApiServer(
        objects, host=args.host, port=args.port, calico_api=tuple(args.calico_api or (CALICO_CRD,))
    )
    with api:
        api.write_kubeconfig(args.kubeconfig, context=args.context)
        print(f"ready {api.url}", flush=True)
        done.wait(args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
