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
