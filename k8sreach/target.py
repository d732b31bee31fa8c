"""Parse and validate what the user asks about: a Service, its namespace and port."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from k8sreach.errors import UserError

# Kubernetes' own rules: a Service name is a DNS-1035 label, a namespace a DNS-1123 label.
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# A named port (IANA_SVC_NAME): at most 15 characters, lowercase alphanumerics and '-',
# at least one letter, no leading, trailing or doubled '-'.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*$")
_LABEL_MAX = 63


class TargetError(UserError):
    """The target does not name a Service the way Kubernetes would accept."""


@dataclass(frozen=True)
class Target:
    """A Service to diagnose; `port` is a number, a port name, or None when unknown.

    An Ingress run (a URL target, or --ingress NAME) has `url` and/or `ingress` set and no
    Service: `service` is empty, and `namespace` is empty when the Ingress may be in any.
    """

    service: str
    namespace: str
    cluster_domain: str
    port: int | str | None = None
    url: str | None = None
    ingress: str | None = None

    @property
    def kind(self) -> str:
        """Return 'ingress' for an Ingress run (a URL or --ingress), else 'service'."""
        return "ingress" if self.url is not None or self.ingress is not None else "service"

    @property
    def fqdn(self) -> str:
        """The absolute name kube-dns answers for, with its trailing dot."""
        return f"{self.service}.{self.namespace}.svc.{self.cluster_domain}."

    @property
    def short_name(self) -> str:
        return f"{self.service}.{self.namespace}"

    def as_dict(self) -> dict[str, object]:
        if self.kind == "ingress":
            return {
                "service": None,
                "namespace": self.namespace or None,
                "fqdn": None,
                "port": self.port,
                "url": self.url,
                "ingress": self.ingress,
            }
        return {
            "service": self.service,
            "namespace": self.namespace,
            "fqdn": self.fqdn,
            "port": self.port,
        }


@dataclass(frozen=True)
class UrlParts:
    """A URL split the way a request needs it: where to connect and what to ask for."""

    scheme: str
    host: str  # lowercase, without brackets for IPv6
    port: int
    path: str  # the request target: path and query, at least "/"
    explicit_port: bool = False

    @property
    def host_header(self) -> str:
        """Return the Host header a browser sends: the host, with the port if not default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path}"


def _label_problem(value: str, what: str, pattern: re.Pattern[str], rule: str) -> str | None:
    if not value:
        return f"the {what} is empty"
    if len(value) > _LABEL_MAX:
        return f"the {what} '{value[:20]}...' is {len(value)} characters long; at most 63"
    if value.lower() != value and pattern.match(value.lower()):
        return f"the {what} '{value}' has capital letters; Kubernetes names are lowercase"
    if not pattern.match(value):
        return f"the {what} '{value}' is not a valid {rule}"
    return None


def _check_service(name: str) -> None:
    problem = _label_problem(
        name,
        "service name",
        _DNS1035,
        "DNS-1035 label (lowercase letters, digits and '-', starting with a letter, "
        "ending with a letter or digit)",
    )
    if problem:
        raise TargetError(problem)


def check_namespace(name: str) -> None:
    """Raise TargetError unless `name` is a valid namespace (a DNS-1123 label)."""
    problem = _label_problem(
        name,
        "namespace",
        _DNS1123,
        "DNS-1123 label (lowercase letters, digits and '-', starting and ending with a "
        "letter or digit)",
    )
    if problem:
        raise TargetError(problem)


def check_cluster_domain(domain: str) -> str:
    """Return the cluster domain without a trailing dot, or raise TargetError."""
    stripped = domain.rstrip(".")
    if (
        not stripped
        or len(stripped) > 253
        or not _DNS1123_SUBDOMAIN.match(stripped)
        or any(len(part) > _LABEL_MAX for part in stripped.split("."))
    ):
        raise TargetError(f"the cluster domain '{domain}' is not a valid DNS name")
    return stripped


def parse_port(text: str) -> int | str:
    """Return a port number (1-65535) or a valid port name; raise TargetError otherwise."""
    if text.isascii() and text.isdigit():
        if len(text) > 5:
            raise TargetError(f"the port {text[:12]}... is out of range; use 1-65535")
        number = int(text)
        if 1 <= number <= 65535:
            return number
        raise TargetError(f"the port {text} is out of range; use 1-65535")
    if len(text) <= 15 and _PORT_NAME.match(text):
        return text
    raise TargetError(
        f"the port '{text}' is neither a number (1-65535) nor a port name "
        "(up to 15 lowercase letters, digits and '-')"
    )


def parse_target(
    text: str,
    *,
    namespace: str | None = None,
    port: int | str | None = None,
    cluster_domain: str = "cluster.local",
) -> Target:
    """Parse `svc.ns`, `svc.ns.svc.<domain>` or `svc` (with `namespace`), each with `:port`.

    A namespace or port given both in the target and as an option must agree.
    """
    raw = text.strip()
    if not raw:
        raise TargetError(
            "the target is empty; give a Service as NAME.NAMESPACE, e.g. mysql-read.default"
        )
    if "://" in raw:
        raise TargetError(f"'{raw}' is a URL; give a Service as NAME.NAMESPACE[:PORT]")
    domain = check_cluster_domain(cluster_domain)

    name_part, sep, port_part = raw.rpartition(":") if ":" in raw else (raw, "", "")
    if sep and not port_part:
        raise TargetError(f"the target '{raw}' ends with ':' but names no port")
    if ":" in name_part:
        raise TargetError(f"the target '{raw}' has more than one ':'; use NAME.NAMESPACE:PORT")
    target_port = parse_port(port_part) if sep else None

    name = name_part[:-1] if name_part.endswith(".") else name_part  # one trailing dot: absolute
    labels = name.split(".")
    if any(label == "" for label in labels):
        raise TargetError(f"the target '{raw}' has an empty name between dots")

    if len(labels) == 1:
        service, target_ns = labels[0], None
    elif len(labels) == 2:
        service, target_ns = labels
    elif len(labels) >= 4 and labels[2] == "svc":
        service, target_ns = labels[0], labels[1]
        given_domain = ".".join(labels[3:])
        if given_domain.lower() != domain.lower():
            raise TargetError(
                f"the target's cluster domain '{given_domain}' differs from --cluster-domain "
                f"'{domain}'; give --cluster-domain {given_domain} or the short form "
                f"{service}.{target_ns}"
            )
    else:
        raise TargetError(
            f"the target '{raw}' is not NAME, NAME.NAMESPACE or NAME.NAMESPACE.svc.{domain}"
        )

    _check_service(service)
    if target_ns is not None:
        check_namespace(target_ns)
    if namespace is not None:
        check_namespace(namespace)
        if target_ns is not None and target_ns != namespace:
            raise TargetError(
                f"the target names namespace '{target_ns}' but -n says '{namespace}'; "
                "give one of them"
            )
    final_ns = target_ns or namespace or "default"

    if port is not None and target_port is not None and port != target_port:
        raise TargetError(
            f"the target names port {target_port} but -p says {port}; give one of them"
        )
    return Target(service, final_ns, domain, target_port if target_port is not None else port)


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def split_url(text: str) -> UrlParts:
    """Return the parts of an http(s) URL, or raise TargetError saying what is wrong.

    A URL with a user name or password is refused without repeating it: k8sreach never sends
    nor prints credentials.
    """
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        if "@" in raw:
            raise TargetError("the URL is malformed (and seems to carry credentials)") from None
        raise TargetError(f"the URL '{raw}' is malformed: {exc}") from None
    if parts.username is not None or parts.password is not None:
        raise TargetError(
            "the URL carries a user name or password; give it without them (k8sreach never "
            "sends or prints credentials)"
        )
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise TargetError(f"the URL '{raw}' is not http:// or https://")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise TargetError(f"the URL '{raw}' names no host")
    _check_host(host, raw)
    if port == 0:
        raise TargetError(f"the URL '{raw}' has port 0; use 1-65535")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return UrlParts(scheme, host, port or _DEFAULT_PORTS[scheme], path, port is not None)


def _check_host(host: str, raw: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or not all(len(x) <= _LABEL_MAX and _HOST_LABEL.match(x) for x in labels):
        raise TargetError(f"the host '{host}' in the URL '{raw}' is not a valid DNS name")


def check_ingress_name(name: str) -> None:
    """Raise TargetError unless `name` is a valid Ingress name (a DNS-1123 subdomain)."""
    if not name:
        raise TargetError("the Ingress name is empty")
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        raise TargetError(
            f"the Ingress name '{name}' is not a valid DNS-1123 subdomain (lowercase letters, "
            "digits, '-' and '.', starting and ending with a letter or digit)"
        )


def parse_ingress_target(
    url: str | None,
    *,
    ingress: str | None = None,
    namespace: str | None = None,
    cluster_domain: str = "cluster.local",
) -> Target:
    """Return the Target of an Ingress run: a URL such as http://my.example.com/app, the
    Ingress NAME (--ingress, in `namespace` or 'default'), or both.

    Without --ingress and -n, the rule for the URL may be in any namespace (namespace '').
    """
    if url is None and ingress is None:
        raise TargetError("give a URL or --ingress NAME")
    domain = check_cluster_domain(cluster_domain)
    if namespace is not None:
        check_namespace(namespace)
    if ingress is not None:
        check_ingress_name(ingress)
    parts = split_url(url) if url is not None else None
    final_ns = namespace or ("default" if ingress is not None else "")
    return Target(
        "",
        final_ns,
        domain,
        parts.port if parts is not None else None,
        url=parts.url if parts is not None else None,
        ingress=ingress,
    )
