"""Helpers the built-in checks share: CIDR membership, naming ranges, calling the cluster API."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from k8sreach.config import IPNetwork
from k8sreach.context import Unavailable

if TYPE_CHECKING:
    from k8sreach.cluster import ClusterError

T = TypeVar("T")


def range_of(
    address: str, service_cidrs: Iterable[IPNetwork], pod_cidrs: Iterable[IPNetwork]
) -> str | None:
    """'service' or 'pod' for an address inside those ranges, else None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if any(ip in net for net in service_cidrs):
        return "service"
    if any(ip in net for net in pod_cidrs):
        return "pod"
    return None


def cidr_list(nets: Iterable[IPNetwork]) -> list[str]:
    return [str(n) for n in nets]


# Facts the cluster checks add to those of k8sreach.check.
SERVICE_PORT = "service_port"  # the Service's spec.ports entry being probed (a dict)
# every endpoint IP of the Service whatever the port: {"ready": [...], "not_ready": [...]}
BACKENDS = "backends"

# What the API server says for a path it does not serve at all (a group it lacks), as opposed
# to a missing object.
NO_SUCH_PATH = "the server could not find the requested resource"


def api_call(fn: Callable[..., T], *args: Any) -> T:
    """Return fn(*args); an API failure other than notfound becomes Unavailable (a skip).

    notfound is re-raised as the ClusterError: only the caller knows whether a missing object
    is the diagnosis (no such Service) or just an absent optional one.
    """
    from k8sreach.cluster import ClusterError

    try:
        return fn(*args)
    except ClusterError as exc:
        if exc.kind == "notfound":
            raise
        raise Unavailable(api_reason(exc)) from None


def api_reason(exc: ClusterError) -> str:
    """Return the error's one-line message, naming the refused request if it does not yet."""
    message = str(exc)
    call = describe_call(exc)
    if call and call not in message:
        return f"cannot {call}: {message}"
    return message


def describe_call(exc: ClusterError) -> str:
    """Return the request an error is about, as 'get services "db" in namespace default'."""
    if not exc.verb or not exc.resource:
        return ""
    text = f"{exc.verb} {exc.resource}"
    if exc.name is not None:
        text += f' "{exc.name}"'
    if exc.namespace is not None:
        text += f" in namespace {exc.namespace}"
    return text


def label_selector(selector: Mapping[str, str]) -> str:
    """Return a selector as kubectl -l takes it: 'app=mysql,tier=db'."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def host_port(ip: str, port: int | None) -> str:
    """Return 'ip:port' ('[ip]:port' for IPv6), or the bare ip without a port."""
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# -- the API's objects as input: what a malformed or hostile answer is cut down to ------------


def as_dict(value: object) -> dict[str, Any]:
    """Return a mapping as a dict; anything else as an empty dict."""
    return dict(value) if isinstance(value, Mapping) else {}


def as_dicts(value: object) -> list[dict[str, Any]]:
    """Return the mappings of a list; an empty list for anything that is not a list."""
    return [dict(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """Return a string as it is; None for anything else."""
    return value if isinstance(value, str) else None


def as_port(value: object) -> int | None:
    """Return a port number 1-65535; None for anything else (bools and numeric strings too)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return None


def as_ip(value: object) -> str | None:
    """Return an IP address literal in its canonical form; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def type_name(value: object) -> str:
    """Return how a JSON value reads in a message: 'a string', 'null', 'a list'."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "an object" if isinstance(value, Mapping) else "something else")


class MalformedObject(ValueError):
    """An API object whose essential parts are unusable; str() says which part and how."""


def clean_port_entry(entry: object, where: str, notes: list[str]) -> dict[str, Any] | None:
    """Return a Service or endpoint port entry with well-typed fields; None (noted) if its
    port is no number 1-65535."""
    if not isinstance(entry, Mapping):
        notes.append(f"{where} is {type_name(entry)}, not a port entry: ignored")
        return None
    port = as_port(entry.get("port"))
    if port is None:
        notes.append(f"{where}.port is {_shown(entry.get('port'))}, not a port 1-65535: ignored")
        return None
    doc: dict[str, Any] = {"port": port}
    name = entry.get("name")
    if name not in (None, "") and not isinstance(name, str):
        notes.append(f"{where}.name is {type_name(name)}, not a string: dropped")
    elif name:
        doc["name"] = name
    protocol = entry.get("protocol")
    doc["protocol"] = protocol if isinstance(protocol, str) and protocol else "TCP"
    target = entry.get("targetPort")
    if target is not None:
        if as_port(target) is not None or (isinstance(target, str) and target):
            doc["targetPort"] = target
        else:
            notes.append(f"{where}.targetPort is {_shown(target)}: taken as the port")
    node_port = entry.get("nodePort")
    if node_port is not None:
        if as_port(node_port) is not None:
            doc["nodePort"] = node_port
        else:
            notes.append(f"{where}.nodePort is {_shown(node_port)}, not a port: dropped")
    if isinstance(entry.get("appProtocol"), str):
        doc["appProtocol"] = entry["appProtocol"]
    return doc


def _shown(value: object) -> str:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return repr(value)[:40]
    return type_name(value)


def _list_field(
    spec: Mapping[str, Any], key: str, where: str, notes: list[str], essential: bool = False
) -> list[Any]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        if essential:
            raise MalformedObject(f"{where}.{key} is {type_name(value)}")
        notes.append(f"{where}.{key} is {type_name(value)}, not a list: ignored")
        return []
    return value


_HANDLED = frozenset(
    {
        "ports",
        "selector",
        "clusterIP",
        "clusterIPs",
        "externalIPs",
        "publishNotReadyAddresses",
        "type",
        "healthCheckNodePort",
    }
)


def clean_service(svc: object) -> tuple[dict[str, Any], list[str]]:
    """Return the Service with only well-typed parts, and notes on what was dropped; raise
    MalformedObject when its spec or ports are unusable."""
    if not isinstance(svc, Mapping):
        raise MalformedObject(f"the object is {type_name(svc)}")
    notes: list[str] = []
    meta_in = svc.get("metadata")
    if not isinstance(meta_in, Mapping):
        notes.append(f"metadata is {type_name(meta_in)}: ignored")
    meta: dict[str, Any] = {k: v for k, v in as_dict(meta_in).items() if isinstance(v, str)}
    for key in ("labels", "annotations"):
        value = as_dict(meta_in).get(key)
        if isinstance(value, Mapping):
            meta[key] = {k: v for k, v in value.items() if isinstance(v, str)}
    spec_in = svc.get("spec")
    if spec_in is None:
        spec_in = {}
    if not isinstance(spec_in, Mapping):
        raise MalformedObject(f"spec is {type_name(spec_in)}")
    spec: dict[str, Any] = {}
    kind = spec_in.get("type")
    if kind is not None and not isinstance(kind, str):
        notes.append(f"spec.type is {type_name(kind)}: taken as ClusterIP")
    elif kind:
        spec["type"] = kind
    raw_ports = _list_field(spec_in, "ports", "spec", notes, essential=True)
    ports = [
        p
        for i, entry in enumerate(raw_ports)
        if (p := clean_port_entry(entry, f"spec.ports[{i}]", notes)) is not None
    ]
    if raw_ports and not ports:
        raise MalformedObject("spec.ports has no usable entry (" + "; ".join(notes[-3:]) + ")")
    spec["ports"] = ports
    selector = spec_in.get("selector")
    if selector is not None:
        if isinstance(selector, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in selector.items()
        ):
            spec["selector"] = dict(selector)
        else:
            notes.append(f"spec.selector is {type_name(selector)} of other than strings: ignored")
    cluster_ip = spec_in.get("clusterIP")
    if cluster_ip is not None:
        if cluster_ip == "None" or as_ip(cluster_ip) is not None:
            spec["clusterIP"] = cluster_ip
        elif cluster_ip != "":
            notes.append(f"spec.clusterIP is {_shown(cluster_ip)}, not an IP address: ignored")
    ips = _list_field(spec_in, "clusterIPs", "spec", notes)
    good = [ip for ip in ips if ip == "None" or as_ip(ip) is not None]
    if len(good) != len(ips):
        notes.append(f"spec.clusterIPs: {len(ips) - len(good)} entries not IP addresses: ignored")
    if good and spec.get("clusterIP") in (None, good[0]):
        spec["clusterIPs"] = good
    external_ips = _list_field(spec_in, "externalIPs", "spec", notes)
    if external_ips:
        spec["externalIPs"] = [ip for ip in external_ips if as_ip(ip) is not None]
        if len(spec["externalIPs"]) != len(external_ips):
            notes.append("spec.externalIPs: entries that are not IP addresses ignored")
    for key in (
        "externalName",
        "externalTrafficPolicy",
        "internalTrafficPolicy",
        "sessionAffinity",
        "loadBalancerClass",
    ):
        value = spec_in.get(key)
        if isinstance(value, str):
            spec[key] = value
        elif value is not None:
            notes.append(f"spec.{key} is {type_name(value)}: ignored")
    node_port = spec_in.get("healthCheckNodePort")
    if as_port(node_port) is not None:
        spec["healthCheckNodePort"] = node_port
    for key, value in spec_in.items():  # the rest passes when a plain scalar or string list
        if key in spec or key in _HANDLED:
            continue
        if isinstance(value, (str, bool)) or as_port(value) is not None:
            spec[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            spec[key] = list(value)
    if "publishNotReadyAddresses" in spec_in:
        spec["publishNotReadyAddresses"] = spec_in.get("publishNotReadyAddresses") is True
    status_in = svc.get("status")
    if status_in is not None and not isinstance(status_in, Mapping):
        notes.append(f"status is {type_name(status_in)}: ignored")
    balancer = as_dict(as_dict(status_in).get("loadBalancer")).get("ingress")
    entries = _list_field({"ingress": balancer}, "ingress", "status.loadBalancer", notes)
    kept = []
    for i, entry in enumerate(entries):
        doc = as_dict(entry)
        ip, host = as_ip(doc.get("ip")), as_str(doc.get("hostname"))
        if ip or host:
            kept.append({"ip": ip} if ip else {"hostname": host})
        else:
            notes.append(f"status.loadBalancer.ingress[{i}] has no IP address or hostname: ignored")
    out: dict[str, Any] = {"metadata": meta, "spec": spec}
    for key in ("apiVersion", "kind"):
        if isinstance(svc.get(key), str):
            out[key] = svc[key]
    if kept:
        out["status"] = {"loadBalancer": {"ingress": kept}}
    return out, notes
