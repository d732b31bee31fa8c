"""Helpers the built-in checks share: CIDR membership and naming ranges for people."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from k8sreach.config import IPNetwork


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
