"""Read the cluster's view through the Kubernetes API, as raw JSON objects.

The kubeconfig is resolved as kubectl resolves it: an explicit path, else the files listed in
KUBECONFIG (merged: the first file to name a cluster, user or context wins, and the first to set
current-context wins), else ~/.kube/config. The kubernetes client's loader already merges a
colon-separated list, but lets the *last* file's current-context win, so the context is chosen
here and handed to it. The client reads KUBECONFIG once, at import time, which is another reason
the paths are resolved here.

Every request carries one timeout that bounds connecting, the TLS handshake and the answer; the
client's retries are turned off so an unreachable server costs one timeout, not four. Failures
become `ClusterError` with a one-line message, and no token, password, key or certificate data
appears in any message, log record or repr.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

LOG = logging.getLogger(__name__)

ERROR_KINDS = ("unreachable", "unauthorized", "forbidden", "notfound", "timeout", "config", "other")
DEFAULT_TIMEOUT = 5.0
MAX_BODY = 8 * 1024 * 1024  # bytes of one answer read; a cluster's lists fit well within it
REDACTED = "[REDACTED]"
CALICO_GROUP_VERSIONS = ("crd.projectcalico.org/v1", "projectcalico.org/v3")

_MIN_SECRET = 4  # shorter "secrets" would blank out ordinary words in every message
_SECRET_KEYS = ("token", "password", "client-key-data", "client-certificate-data")
_PROVIDER_SECRET_KEYS = ("id-token", "refresh-token", "access-token", "client-secret")
_NO_SUCH_PATH = "the server could not find the requested resource"
_CHUNK = 64 * 1024
# The worker's own socket timeouts should report first (their message is more precise); the
# deadline only catches a server that keeps every single read short but never finishes.
_GRACE = 0.2


class ClusterError(Exception):
    """The API could not answer; `kind` is one of ERROR_KINDS, str() a one-line message."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        code: int | None = None,
        server_message: str | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ClusterError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.code = code
        self.server_message = server_message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ClusterError({self.kind!r}, {self.message!r})"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return text with every secret of 4 or more characters replaced by [REDACTED]."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A filter that strips the given secrets from records; put it on a handler, so that it
    also sees records propagated from other loggers."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and traceback text without secrets; keep every record."""
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text, self.secrets)
        return True


@dataclass(frozen=True)
class _Call:
    """What a request asks for, in the words messages use."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    all_namespaces: bool = False

    def describe(self) -> str:
        """Return e.g. 'list services in namespace default' or 'get nodes "node-1"'."""
        text = f"{self.verb} {self.resource}"
        if self.name is not None:
            text += f' "{self.name}"'
        if self.namespace is not None:
            text += f" in namespace {self.namespace}"
        elif self.all_namespaces:
            text += " in all namespaces"
        return text


def kubeconfig_paths(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Return the kubeconfig files to read, in kubectl's order and precedence."""
    env = os.environ if environ is None else environ
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_dir():
            raise ClusterError(
                "config", f"kubeconfig {explicit} is a directory, not a kubeconfig file"
            )
        if not explicit.is_file():
            raise ClusterError("config", f"kubeconfig {explicit} does not exist")
        return [explicit]
    listed = env.get("KUBECONFIG", "")
    if listed:
        entries = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
        found = [p for p in entries if p.is_file()]  # kubectl skips missing entries too
        if not found:
            raise ClusterError(
                "config",
                "none of the kubeconfig files in KUBECONFIG exist: "
                + ", ".join(str(p) for p in entries),
            )
        return list(dict.fromkeys(found))
    default = Path("~/.kube/config").expanduser()
    if not default.is_file():
        raise ClusterError(
            "config",
            f"no kubeconfig: {default} does not exist and KUBECONFIG is not set; pass --kubeconfig",
        )
    return [default]


def _read_kubeconfig(path: Path) -> dict[str, Any] | None:
    """Return one kubeconfig's content, None if empty; a config ClusterError if malformed."""
    import yaml  # type: ignore[import-untyped]  # comes with the kubernetes client

    try:
        content = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ClusterError("config", f"cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # only the position and the problem: the YAML snippet could quote a token
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ClusterError(
            "config", f"kubeconfig {path} is not valid YAML{where}: {problem}"
        ) from None
    if content is None:
        return None
    if not isinstance(content, dict):
        raise ClusterError(
            "config", f"kubeconfig {path} is not a kubeconfig (no mapping at its top level)"
        )
    for section in ("clusters", "users", "contexts"):
        entries = content.get(section) or []
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get(section[:-1]) or {}, dict) for e in entries
        ):
            raise ClusterError(
                "config",
                f"kubeconfig {path} is malformed: {section} must be a list of entries, each "
                f"with a name and a {section[:-1]} mapping",
            )
    return content


def _named(configs: Sequence[Mapping[str, Any]], section: str) -> dict[str, Mapping[str, Any]]:
    """Return a section's entries by name, the first file naming one winning (as kubectl)."""
    found: dict[str, Mapping[str, Any]] = {}
    for config in configs:
        for entry in config.get(section) or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                found.setdefault(entry["name"], entry.get(section[:-1]) or {})
    return found


def _pem_lines(data: str) -> list[str]:
    try:
        text = base64.b64decode(data, validate=False).decode("ascii", "replace")
    except (binascii.Error, ValueError):
        return []
    return [
        line.strip()
        for line in text.splitlines()
        if len(line.strip()) >= 16 and not line.startswith("-----")
    ]


def _kubeconfig_secrets(configs: Sequence[Mapping[str, Any]]) -> set[str]:
    """Return every credential the kubeconfigs hold, and the key material inside PEM data."""
    found: set[str] = set()
    for user in _named(configs, "users").values():
        if not isinstance(user, Mapping):
            continue
        for key in _SECRET_KEYS:
            value = user.get(key)
            if isinstance(value, str) and value:
                found.add(value)
                if key.endswith("-data"):
                    found.update(_pem_lines(value))
        provider = (user.get("auth-provider") or {}).get("config") or {}
        found.update(str(provider[k]) for k in _PROVIDER_SECRET_KEYS if provider.get(k))
        for item in (user.get("exec") or {}).get("env") or []:
            if isinstance(item, Mapping) and item.get("value"):
                found.add(str(item["value"]))
    return found


def _safe_url(url: str) -> str:
    """Return the URL without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.contextmanager
def _logger_levels_kept(*names: str) -> Iterator[None]:
    # kubernetes' Configuration() sets the 'urllib3' and 'client' loggers to WARNING as a side
    # effect; put back whatever the CLI chose for --verbose.
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class ClusterAccess:
    """Read-only access to one cluster's API through the kubernetes client."""

    def __init__(
        self,
        api_client: Any,
        *,
        server: str,
        context: str,
        user: str | None,
        namespace: str,
        timeout: float,
        secrets: Iterable[str] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("the API timeout must be positive")
        self._api = api_client
        self.server = _safe_url(server)
        self.context = context
        self.user = user
        self.namespace = namespace
        self.timeout = float(timeout)
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= _MIN_SECRET}))
        self._calico_group_version: str | None = None

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        context: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ClusterAccess:
        """Return access through the kubeconfig kubectl would use, or raise ClusterError."""
        paths = kubeconfig_paths(path)
        loaded = [(p, c) for p in paths if (c := _read_kubeconfig(p)) is not None]
        if not loaded:
            raise ClusterError("config", "kubeconfig " + ", ".join(map(str, paths)) + " is empty")
        files = [p for p, _ in loaded]
        configs = [c for _, c in loaded]
        where = ", ".join(map(str, files))
        secrets = _kubeconfig_secrets(configs)

        chosen = context or next(
            (
                c["current-context"]
                for c in configs
                if isinstance(c.get("current-context"), str) and c["current-context"]
            ),
            None,
        )
        contexts = _named(configs, "contexts")
        known = ", ".join(sorted(contexts)) or "none"
        if not chosen:
            raise ClusterError(
                "config",
                f"kubeconfig {where} sets no current-context; pass --context (contexts: {known})",
            )
        if chosen not in contexts:
            raise ClusterError(
                "config", f'context "{chosen}" is not in kubeconfig {where} (contexts: {known})'
            )
        entry = contexts[chosen]
        cluster_name = entry.get("cluster")
        cluster = _named(configs, "clusters").get(str(cluster_name))
        if cluster is None:
            raise ClusterError(
                "config",
                f'context "{chosen}" names cluster "{cluster_name}", '
                f"which kubeconfig {where} does not define",
            )
        if not cluster.get("server"):
            raise ClusterError(
                "config", f'cluster "{cluster_name}" in kubeconfig {where} has no server'
            )

        api_client = cls._load_client(files, chosen, secrets, where)
        api_key = api_client.configuration.api_key.get("BearerToken", "")
        scheme, _, credential = str(api_key).partition(" ")  # "Bearer <token>", "Basic <b64>"
        if credential.strip():
            secrets.add(credential.strip())
        elif scheme:
            secrets.add(scheme)
        return cls(
            api_client,
            server=str(cluster["server"]).rstrip("/"),
            context=chosen,
            user=entry.get("user"),
            namespace=str(entry.get("namespace") or "default"),
            timeout=timeout,
            secrets=secrets,
        )

    @staticmethod
    def _load_client(
        files: Sequence[Path], context: str, secrets: Iterable[str], where: str
    ) -> Any:
        from kubernetes import client
        from kubernetes import config as kube_config

        with _logger_levels_kept("urllib3", "client"):
            configuration = client.Configuration()
            try:
                kube_config.load_kube_config(
                    config_file=os.pathsep.join(map(str, files)),
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            # The loader raises ConfigException, but also KeyError, TypeError or ValueError
            # (bad base64) for malformed entries; all of them mean "fix the kubeconfig".
            except Exception as exc:
                message = redact(_one_line(str(exc)), secrets)
                if isinstance(exc, binascii.Error):
                    message = f"bad base64 data ({message})"
                raise ClusterError("config", f"cannot use kubeconfig {where}: {message}") from None
            # One attempt per call: the timeout is the whole budget (urllib3 retries 3 times
            # by default, which would make an unreachable server cost four timeouts).
            configuration.retries = 0
            return client.ApiClient(configuration=configuration)

    # -- housekeeping --------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str, ...]:
        """Return the credentials this access holds, for a RedactingFilter on --debug output."""
        return self._secrets

    def redact(self, text: str) -> str:
        """Return text without any of this access's credentials."""
        return redact(text, self._secrets)

    def __repr__(self) -> str:
        return (
            f"ClusterAccess(server={self.server!r}, context={self.context!r}, "
            f"user={self.user!r}, namespace={self.namespace!r}, timeout={self.timeout!r})"
        )

    def close(self) -> None:
        """Close the client's connections."""
        self._api.close()

    def __enter__(self) -> ClusterAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def get_version(self) -> dict[str, Any]:
        """Return the server's /version document."""
        return self._get("/version", _Call("get", "version"))

    def get_service(self, namespace: str, name: str) -> dict[str, Any]:
        """Return one Service."""
        return self._get(
            _core(namespace, "services", name), _Call("get", "services", namespace, name)
        )

    def list_services(self, namespace: str) -> list[dict[str, Any]]:
        """Return the Services of a namespace."""
        return self._items(_core(namespace, "services"), _Call("list", "services", namespace))

    def get_endpoints(self, namespace: str, name: str) -> dict[str, Any]:
        """Return the v1 Endpoints of one Service."""
        return self._get(
            _core(namespace, "endpoints", name), _Call("get", "endpoints", namespace, name)
        )

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """Return the EndpointSlices of one Service (by its kubernetes.io/service-name label)."""
        path = f"/apis/discovery.k8s.io/v1/namespaces/{_seg(namespace)}/endpointslices"
        return self._items(
            path,
            _Call("list", "endpointslices", namespace),
            [("labelSelector", f"kubernetes.io/service-name={service}")],
        )

    def list_pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        """Return the Pods of a namespace whose labels match every key=value of the selector
        (an empty selector matches every Pod, as in the API)."""
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(selector.items())))]
        return self._items(
            _core(namespace, "pods"), _Call("list", "pods", namespace), query if selector else []
        )

    def list_nodes(self) -> list[dict[str, Any]]:
        """Return every Node."""
        return self._items("/api/v1/nodes", _Call("list", "nodes"))

    def get_node(self, name: str) -> dict[str, Any]:
        """Return one Node."""
        return self._get(f"/api/v1/nodes/{_seg(name)}", _Call("get", "nodes", name=name))

    def get_ingress(self, namespace: str, name: str) -> dict[str, Any]:
        """Return one Ingress."""
        path = f"/apis/networking.k8s.io/v1/namespaces/{_seg(namespace)}/ingresses/{_seg(name)}"
        return self._get(path, _Call("get", "ingresses", namespace, name))

    def list_ingresses(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return the Ingresses of a namespace, or of all namespaces for None."""
        if namespace is None:
            return self._items(
                "/apis/networking.k8s.io/v1/ingresses",
                _Call("list", "ingresses", all_namespaces=True),
            )
        path = f"/apis/networking.k8s.io/v1/namespaces/{_seg(namespace)}/ingresses"
        return self._items(path, _Call("list", "ingresses", namespace))

    def list_calico_node_statuses(self) -> list[dict[str, Any]]:
        """Return Calico's CalicoNodeStatus objects: from the CRD crd.projectcalico.org/v1,
        else from projectcalico.org/v3 (the Calico API server); notfound if neither exists."""
        call = _Call("list", "caliconodestatuses")
        versions = (
            [self._calico_group_version]
            if self._calico_group_version
            else list(CALICO_GROUP_VERSIONS)
        )
        for group_version in versions:
            try:
                items = self._items(f"/apis/{group_version}/caliconodestatuses", call)
            except ClusterError as exc:
                if exc.kind == "notfound" and exc.server_message == _NO_SUCH_PATH:
                    continue
                raise
            self._calico_group_version = group_version
            return items
        raise ClusterError(
            "notfound",
            f"the API server at {self.server} serves no "
            "CalicoNodeStatus (neither "
            + " nor ".join(CALICO_GROUP_VERSIONS)
            + "): Calico is not installed, or keeps its data elsewhere (etcd)",
            verb="list",
            resource="caliconodestatuses",
            code=404,
            server_message=_NO_SUCH_PATH,
        )

    # -- transport -----------------------------------------------------------------------------

    def _items(
        self, path: str, call: _Call, query: Sequence[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        body = self._get(path, call, query)
        items = body.get("items")
        return list(items) if isinstance(items, list) else []

    def _get(self, path: str, call: _Call, query: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """Return the answer's JSON object, the whole call within the timeout.

        urllib3's timeout bounds each socket read, so a server trickling its headers or body
        could hold a call for ever: the call runs in a daemon thread, abandoned (it cannot
        block the exit) when the deadline passes.
        """
        done: list[tuple[bool, Any]] = []

        def work() -> None:
            try:
                done.append((True, self._fetch(path, call, query)))
            except BaseException as exc:  # handed to the caller, raised there
                done.append((False, exc))

        worker = threading.Thread(target=work, name=f"k8sreach-api-{call.verb}", daemon=True)
        worker.start()
        worker.join(self.timeout + _GRACE)
        if not done:
            LOG.debug("GET %s: no complete answer within %.1f s, abandoned", path, self.timeout)
            raise self._error(
                "timeout",
                f"the API server at {self.server} did not answer within {self.timeout:g} s "
                f"({call.describe()})",
                call,
            )
        ok, value = done[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _read_body(self, response: Any, call: _Call) -> bytes:
        """Return the answer's body, at most MAX_BODY bytes; a ClusterError beyond that."""
        raw = getattr(response, "response", None)
        if raw is None or not hasattr(raw, "read"):
            return bytes(response.read())
        chunks: list[bytes] = []
        size = 0
        while chunk := raw.read(_CHUNK):
            size += len(chunk)
            if size > MAX_BODY:
                raw.close()
                raise self._error(
                    "other",
                    f"the API server at {self.server} answered {call.describe()} with more "
                    f"than {MAX_BODY // (1024 * 1024)} MB; k8sreach reads no more",
                    call,
                    code=response.status,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _fetch(
        self, path: str, call: _Call, query: Sequence[tuple[str, str]] = ()
    ) -> dict[str, Any]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        started = time.monotonic()
        try:
            request = self._api.param_serialize(
                "GET",
                path,
                query_params=list(query),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=self.timeout)
            data = self._read_body(response, call)
        except ApiException as exc:  # the REST layer wraps a TLS failure as status 0
            raise self._tls_error(str(exc.reason), call) from None
        except urllib3.exceptions.MaxRetryError as exc:
            raise self._transport_error(exc.reason or exc, call) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc, call) from None
        finally:
            LOG.debug(
                "GET %s%s took %.3f s",
                path,
                "?" + "&".join(f"{k}={v}" for k, v in query) if query else "",
                time.monotonic() - started,
            )
        if not 200 <= response.status < 300:
            raise self._status_error(response.status, data, call)
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._error(
                "other",
                f"the API server at {self.server} answered {call.describe()}"
                " with something that is not a JSON object",
                call,
                code=response.status,
            )
        return body

    def _error(
        self,
        kind: str,
        message: str,
        call: _Call,
        *,
        code: int | None = None,
        server_message: str | None = None,
    ) -> ClusterError:
        return ClusterError(
            kind,
            self.redact(_one_line(message)),
            verb=call.verb,
            resource=call.resource,
            namespace=call.namespace,
            name=call.name,
            code=code,
            server_message=server_message,
        )

    def _status_error(self, code: int, data: bytes, call: _Call) -> ClusterError:
        try:
            status = json.loads(data)
        except ValueError:
            status = None
        said = ""
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            said = self.redact(_one_line(status["message"]))
        reason = (status.get("reason") if isinstance(status, dict) else None) or ""
        if code == 401:
            who = (
                f'user "{self.user}" of context "{self.context}"'
                if self.user
                else (f'context "{self.context}"')
            )
            return self._error(
                "unauthorized",
                f"the API server at {self.server} refused the "
                f"credentials of {who} (401 Unauthorized): they may have expired;"
                " renew them (log in again, or get a fresh token or certificate)"
                " and retry",
                call,
                code=code,
                server_message=said,
            )
        if code == 403:
            return self._error(
                "forbidden",
                f"not allowed to {call.describe()} (403 Forbidden)" + (f": {said}" if said else ""),
                call,
                code=code,
                server_message=said,
            )
        if code == 404:
            if said == _NO_SUCH_PATH or not said:
                message = (
                    f"the API server at {self.server} does not serve {call.resource}: "
                    f"{said or 'not found'}"
                )
            else:
                message = said + (f" in namespace {call.namespace}" if call.namespace else "")
            return self._error("notfound", message, call, code=code, server_message=said)
        phrase = reason or "error"
        return self._error(
            "other",
            f"the API server at {self.server} answered {code} {phrase} "
            f"to {call.describe()}" + (f": {said}" if said else ""),
            call,
            code=code,
            server_message=said,
        )

    def _transport_error(self, exc: BaseException, call: _Call) -> ClusterError:
        import urllib3

        errors = urllib3.exceptions
        budget = f"{self.timeout:g} s"
        if isinstance(exc, errors.NameResolutionError):
            host = urlsplit(self.server).hostname
            return self._error(
                "unreachable",
                f"cannot reach the API server at {self.server}: "
                f"the name {host} does not resolve ({call.describe()})",
                call,
            )
        if isinstance(exc, errors.NewConnectionError):
            return self._error(
                "unreachable",
                f"cannot reach the API server at {self.server}: "
                f"{_os_reason(exc)} ({call.describe()})",
                call,
            )
        if isinstance(exc, errors.ConnectTimeoutError):
            return self._error(
                "unreachable",
                f"cannot reach the API server at {self.server}: "
                f"no connection within {budget} ({call.describe()})",
                call,
            )
        if isinstance(exc, errors.SSLError):
            return self._tls_error(str(exc), call)
        if isinstance(exc, (errors.TimeoutError, TimeoutError)):
            return self._error(
                "timeout",
                f"the API server at {self.server} did not answer "
                f"within {budget} ({call.describe()})",
                call,
            )
        if isinstance(exc, errors.ProxyError):
            return self._error(
                "unreachable",
                f"cannot reach the API server at {self.server} "
                f"through the proxy: {_os_reason(exc)}",
                call,
            )
        return self._error(
            "unreachable",
            f"the connection to the API server at {self.server} "
            f"failed: {_os_reason(exc)} ({call.describe()})",
            call,
        )

    def _tls_error(self, reason: str, call: _Call) -> ClusterError:
        text = _one_line(reason).removeprefix("SSLError ")
        return self._error(
            "other",
            f"TLS with the API server at {self.server} failed: {text}; "
            "check the cluster's certificate-authority in the kubeconfig",
            call,
        )


def _os_reason(exc: BaseException) -> str:
    """Return the operating system's words for a failure ('connection refused'), if any."""
    seen: BaseException | None = exc
    for _ in range(10):  # exception chains are short; the bound only guards against a loop
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    return _one_line(str(exc)) or type(exc).__name__


def _seg(value: str) -> str:
    return quote(value, safe="")


def _core(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{_seg(namespace)}/{plural}"
    return f"{path}/{_seg(name)}" if name is not None else path
