"""The `route-present` check."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.config import IPNetwork
from k8sreach.context import RunContext
from k8sreach.result import Finding, Hop, failed, passed, skipped
from k8sreach.routes import Route, RouteReadError, covering, lookup, read_local_routes


def route_doc(route: Route | None) -> dict[str, Any] | None:
    if route is None:
        return None
    return {
        "destination": str(route.destination),
        "next_hop": str(route.gateway) if route.gateway is not None else None,
        "interface": route.interface,
        "metric": route.metric,
        "source": route.source,
    }


def _describe(route: Route) -> str:
    via = f"via {route.gateway}" if route.gateway is not None else "on-link (no next hop)"
    dev = f" dev {route.interface}" if route.interface else ""
    return f"{route.destination} {via}{dev}"


def add_route_commands(network: IPNetwork, gateway: str, platform: str = sys.platform) -> str:
    """The command (and its persistent form) that adds a route for `network` via `gateway`."""
    if platform.startswith("win"):
        return (
            f"route ADD -p {network.network_address} MASK {network.netmask} {gateway}\n"
            "(-p keeps it across reboots; run in an elevated prompt)"
        )
    if platform == "darwin":
        return (
            f"sudo route -n add -net {network} {gateway}\n"
            f"(to keep it: networksetup -setadditionalroutes <service> "
            f"{network.network_address} {network.netmask} {gateway})"
        )
    return (
        f"sudo ip route replace {network} via {gateway}\n"
        f"(to keep it: add `up ip route replace {network} via {gateway}` to the interface in "
        f"/etc/network/interfaces, or `nmcli connection modify <connection> +ipv4.routes "
        f'"{network} {gateway}"`)'
    )


def judge(
    routes: list[Route],
    destinations: list[tuple[str, Any]],
    gateway: str | None,
    platform: str = sys.platform,
) -> Finding:
    """Judge where each destination (an address or a CIDR) is sent.

    Three distinct failures: no route at all; only the default route matches; a route via
    another next hop. Evidence holds the route that did match for every destination.
    """
    checked: list[dict[str, Any]] = []
    problems: list[tuple[str, str, Any, Route | None]] = []
    expected = ipaddress.ip_address(gateway) if gateway else None
    for label, dest in destinations:
        if isinstance(dest, ipaddress.IPv4Network | ipaddress.IPv6Network):
            route = covering(routes, dest)
        else:
            route = lookup(routes, dest)
        checked.append({"destination": label, "matched": route_doc(route)})
        if route is None:
            problems.append(("missing", label, dest, None))
        elif route.is_default and not (expected is not None and route.gateway == expected):
            problems.append(("default-only", label, dest, route))
        elif expected is not None and route.gateway != expected:
            problems.append(("other-next-hop", label, dest, route))

    evidence: dict[str, Any] = {"expected_next_hop": gateway, "checked": checked}
    fix_nets = _networks_to_fix(problems)
    if problems:
        kind, label, _dest, route = problems[0]
        evidence["failure"] = kind
        fix = (
            "\n".join(add_route_commands(n, gateway, platform) for n in fix_nets)
            if gateway
            else "Add a route for the cluster ranges via the edge gateway (give --gateway IP so "
            "k8sreach can print the exact command)."
        )
        if kind == "missing":
            return failed(
                f"no route at all for {label}", evidence=evidence, remediation=fix, address=label
            )
        assert route is not None  # only "missing" has no matched route
        if kind == "default-only":
            return failed(
                f"no route for {label}: only the default route matches ({_describe(route)})",
                evidence=evidence,
                remediation=fix,
                address=label,
            )
        return failed(
            f"{label} is routed via {route.gateway or 'no next hop (on-link)'}, not via the "
            f"gateway {gateway} ({_describe(route)})",
            evidence=evidence,
            remediation=f"Replace the route so it points at the gateway:\n{fix}",
            address=label,
        )
    first = (
        lookup(routes, destinations[0][1])
        if not isinstance(destinations[0][1], ipaddress.IPv4Network | ipaddress.IPv6Network)
        else covering(routes, destinations[0][1])
    )
    assert first is not None
    note = "" if gateway else " (no --gateway given, so the next hop was not compared)"
    label = destinations[0][0]
    how = (
        f"is routed {_describe(first).split(' ', 1)[1]}"
        if label == str(first.destination)
        else f"goes {_describe(first)}"
    )
    return passed(
        f"{label} {how}{note}",
        evidence=evidence,
        address=destinations[0][0],
    )


def _networks_to_fix(problems: list[tuple[str, str, Any, Route | None]]) -> list[IPNetwork]:
    nets: list[IPNetwork] = []
    for _kind, _label, dest, _route in problems:
        if isinstance(dest, ipaddress.IPv4Network | ipaddress.IPv6Network):
            nets.append(dest)
    if not nets:
        for _kind, _label, dest, _route in problems:
            nets.append(ipaddress.ip_network(f"{dest}/{dest.max_prefixlen}"))
    return nets


class RoutePresent(Check):
    """Reads the client's routing table: the target address and the cluster ranges must go
    to the gateway; a missing route, a default-route-only match and another next hop are
    distinct failures, each with the route that matched."""

    id = "route-present"
    hop = Hop.CLIENT
    order = 100
    wants = (facts.ADDRESS,)

    def run(self, ctx: RunContext) -> Finding:
        settings = ctx.settings
        destinations: list[tuple[str, Any]] = []
        address = ctx.fact(facts.ADDRESS)
        if address:
            destinations.append((address, ipaddress.ip_address(address)))
        ip = ipaddress.ip_address(address) if address else None
        # The pod range matters only when the target is a pod address (a headless Service);
        # a client that routes just the service range is fine for a ClusterIP.
        pod_nets = [n for n in settings.pod_cidr if ip is not None and ip in n]
        for net in (*settings.service_cidr, *pod_nets):
            destinations.append((str(net), net))
        if not destinations:
            return skipped("nothing to look up: no address resolved and no --service-cidr given")
        try:
            routes = read_local_routes()
        except RouteReadError as exc:
            return failed(f"cannot read this client's routing table: {exc}")
        return judge(routes, destinations, settings.gateway)
