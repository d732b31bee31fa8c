"""The `service-exists` check."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checks._common import (
    NO_SUCH_PATH,
    SERVICE_PORT,
    MalformedObject,
    api_call,
    as_dict,
    as_port,
    clean_service,
    host_port,
    label_selector,
)
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.result import Finding, Hop, Status, failed
from k8sreach.target import Target

LOG = logging.getLogger(__name__)

_CLOSEST = 3  # names offered for a misspelt Service
_LISTED = 10  # names shown when none is close


def port_doc(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Return one spec.ports entry as evidence: name, port, targetPort, protocol, nodePort."""
    return {
        "name": entry.get("name") or None,
        "port": entry.get("port"),
        "target_port": entry.get("targetPort", entry.get("port")),
        "protocol": entry.get("protocol") or "TCP",
        "node_port": entry.get("nodePort"),
    }


def port_text(entry: Mapping[str, Any]) -> str:
    """Return a port as people read it: 'mysql 3306/TCP -> 3307 (nodePort 30306)'."""
    doc = port_doc(entry)
    text = f"{doc['port']}/{doc['protocol']}"
    if doc["name"]:
        text = f"{doc['name']} {text}"
    if doc["target_port"] != doc["port"]:
        text += f" -> {doc['target_port']}"
    if doc["node_port"]:
        text += f" (nodePort {doc['node_port']})"
    return text


def service_doc(svc: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parts of a Service that decide where its traffic goes, as evidence."""
    spec = svc.get("spec") or {}
    meta = svc.get("metadata") or {}
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "type": spec.get("type") or "ClusterIP",
        "cluster_ip": spec.get("clusterIP"),
        "cluster_ips": list(spec.get("clusterIPs") or []),
        "ports": [port_doc(p) for p in spec.get("ports") or []],
        "selector": dict(spec.get("selector") or {}),
        "external_name": spec.get("externalName"),
        "external_ips": list(spec.get("externalIPs") or []),
        "load_balancer": [i.get("ip") or i.get("hostname") for i in ingress],
        "external_traffic_policy": spec.get("externalTrafficPolicy"),
        "internal_traffic_policy": spec.get("internalTrafficPolicy"),
        "publish_not_ready_addresses": bool(spec.get("publishNotReadyAddresses")),
    }


def is_headless(svc: Mapping[str, Any]) -> bool:
    """Return True for a Service with `clusterIP: None` (DNS gives the pods' addresses)."""
    spec = svc.get("spec") or {}
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") == "None"


@dataclass(frozen=True)
class PortChoice:
    """Which of the Service's ports a run probes; `problem` says why none or why in doubt."""

    entry: Mapping[str, Any] | None
    status: Status = Status.PASS
    problem: str | None = None


def choose_port(ports: Sequence[Mapping[str, Any]], wanted: int | str | None) -> PortChoice:
    """Return the Service port the user means: a number, a port name, or the only port."""
    listing = ", ".join(port_text(p) for p in ports) or "none"
    if isinstance(wanted, str):
        named = [p for p in ports if p.get("name") == wanted]
        if named:
            return PortChoice(_prefer_tcp(named))
        hint = ""
        by_target = [p for p in ports if p.get("targetPort") == wanted]
        if by_target:
            hint = f"; '{wanted}' is the targetPort of {port_text(by_target[0])}"
        return PortChoice(
            None, Status.FAIL, f"the Service has no port named '{wanted}' (ports: {listing}){hint}"
        )
    if isinstance(wanted, int):
        numbered = [p for p in ports if p.get("port") == wanted]
        if numbered:
            return PortChoice(_prefer_tcp(numbered))
        if not ports:
            return PortChoice(None, Status.PASS, "the Service declares no ports")
        hint = ""
        for p in ports:
            if p.get("targetPort") == wanted:
                hint = (
                    f"; {wanted} is the targetPort of {port_text(p)}: through the Service the "
                    f"port is {p.get('port')}"
                )
                break
            if p.get("nodePort") == wanted:
                hint = (
                    f"; {wanted} is the nodePort of {port_text(p)}: it is open on the nodes' "
                    f"addresses, the ClusterIP listens on {p.get('port')}"
                )
                break
        return PortChoice(
            None,
            Status.WARN,
            f"port {wanted} is not one of the Service's ports ({listing}); probing it anyway"
            + hint,
        )
    if len(ports) == 1:
        return PortChoice(ports[0])
    if not ports:
        return PortChoice(None, Status.PASS, "the Service declares no ports")
    return PortChoice(
        None,
        Status.WARN,
        f"the Service has {len(ports)} ports ({listing}); give -p NAME or -p NUMBER to probe one",
    )


def _prefer_tcp(entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    # a DNS Service has 53/UDP and 53/TCP; the TCP probe wants the TCP one
    return next((p for p in entries if (p.get("protocol") or "TCP") == "TCP"), entries[0])


def judge(svc: Mapping[str, Any], target: Target) -> Finding:
    """Describe an existing Service and publish the address and port to probe; a Service the
    API returned malformed fails, its malformed parts are dropped (noted in evidence)."""
    where = f"{target.namespace}/{target.service}"
    try:
        svc, dropped = clean_service(svc)
    except MalformedObject as exc:
        return failed(
            f"the API returned a malformed Service {where}: {exc}",
            evidence={"found": True, "malformed": str(exc)},
            remediation=(
                f"Look at what the API server returns: `kubectl get service {target.service} "
                f"-n {target.namespace} -o json`; a real API server validates Services, so a "
                "malformed one points at a proxy or a fake in front of it."
            ),
            address=where,
        )
    doc = service_doc(svc)
    spec = svc.get("spec") or {}
    ports = list(spec.get("ports") or [])
    choice = choose_port(ports, target.port)
    evidence: dict[str, Any] = {"found": True, **doc}
    if dropped:
        evidence["malformed_parts_ignored"] = dropped
    if choice.entry is not None:
        evidence["probed_port"] = port_doc(choice.entry)
    if choice.problem:
        evidence["port_problem"] = choice.problem

    found: dict[str, Any] = {facts.SERVICE: dict(svc)}
    if choice.entry is not None:
        found[SERVICE_PORT] = dict(choice.entry)
    port_number = choice.entry.get("port") if choice.entry is not None else None
    protocol = (choice.entry or {}).get("protocol") or "TCP"
    notes: list[str] = []
    if choice.entry is not None and protocol != "TCP":
        notes.append(f"port {port_text(choice.entry)} is {protocol}; tcp-connect probes TCP only")
    selector = doc["selector"]
    sel_text = f"selector {label_selector(selector)}" if selector else "no selector"
    address: str | None = None
    kind = doc["type"]

    if kind == "ExternalName":
        head = (
            f"{where} is an ExternalName Service: a DNS alias (CNAME) for "
            f"{doc['external_name']}; it has no ClusterIP and no endpoints"
        )
        address = doc["external_name"]
        if as_port(port_number) is not None and protocol == "TCP":
            found[facts.PORT] = port_number
    elif is_headless(svc):
        head = (
            f"{where} is headless (no ClusterIP: DNS gives the pods' addresses, probed "
            f"directly), {sel_text}"
        )
        if not selector:
            head += " (endpoints written by hand)"
    else:
        cluster_ip = str(doc["cluster_ip"] or "")
        cluster_ips = doc["cluster_ips"] or [cluster_ip]
        type_text = "ClusterIP" if kind == "ClusterIP" else f"{kind}, ClusterIP"
        shown = ", ".join(ip for ip in cluster_ips if ip) or "without an address"
        head = f"{where}: {type_text} {shown}, {sel_text}"
        if not selector:
            head += " (endpoints written by hand)"
        if cluster_ip:
            found[facts.ADDRESS] = cluster_ip
            found[facts.ADDRESSES] = list(cluster_ips)
            address = host_port(cluster_ip, port_number)
        if as_port(port_number) is not None and protocol == "TCP":
            found[facts.PORT] = port_number

    if choice.entry is not None:
        head += f", port {port_text(choice.entry)}"
    elif not ports:
        head += ", no ports"
    if notes:
        evidence["notes"] = notes

    if choice.status is Status.FAIL:
        return failed(
            f"{head}: {choice.problem}",
            evidence=evidence,
            remediation=(
                f"Probe one of the Service's ports by name or number, e.g. "
                f"`k8sreach doctor {target.short_name}:{_example_port(ports)}`; list them with "
                f"`kubectl get service {target.service} -n {target.namespace} -o "
                "jsonpath='{.spec.ports}'`."
            ),
            address=address,
            facts=found,
        )
    summary = head if not choice.problem else f"{head}; {choice.problem}"
    if notes:
        summary += f"; {notes[0]}"
    if dropped:
        summary += f"; the API's answer had malformed parts, ignored: {dropped[0]}"
        if len(dropped) > 1:
            summary += f" (and {len(dropped) - 1} more, see evidence)"
    status = Status.WARN if (choice.status is Status.WARN or notes or dropped) else Status.PASS
    return Finding(status, summary, evidence=evidence, address=address, facts=found)


def _example_port(ports: Sequence[Mapping[str, Any]]) -> str:
    if not ports:
        return "PORT"
    first = ports[0]
    return str(first.get("name") or first.get("port"))


def judge_missing(target: Target, names: Sequence[str], list_problem: str | None = None) -> Finding:
    """A missing Service: fail, offering the closest names of the namespace's Services."""
    where = f"{target.namespace}/{target.service}"
    closest = difflib.get_close_matches(target.service, names, n=_CLOSEST, cutoff=0.6)
    evidence: dict[str, Any] = {
        "found": False,
        "namespace": target.namespace,
        "name": target.service,
        "closest": closest,
        "services_in_namespace": sorted(names)[:_LISTED] if not closest else [],
    }
    if list_problem:
        evidence["list_error"] = list_problem
    if closest:
        summary = f"service {where} not found; closest: {', '.join(closest)}"
    elif list_problem:
        summary = f"service {where} not found (the namespace's Services could not be listed)"
    elif names:
        shown = ", ".join(sorted(names)[:_LISTED])
        more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
        summary = f"service {where} not found; none has a similar name (there: {shown}{more})"
    else:
        summary = f"service {where} not found; namespace {target.namespace} has no Services at all"
    remediation = (
        f"List the Services: `kubectl get services -n {target.namespace}`"
        + (f", e.g. `k8sreach doctor {closest[0]}.{target.namespace}`" if closest else "")
        + ". If the Service lives in another namespace, find it with `kubectl get services "
        f"--all-namespaces --field-selector metadata.name={target.service}`."
    )
    return failed(summary, evidence=evidence, remediation=remediation)


class ServiceExists(Check):
    """Reads the Service from the API: missing (with the closest names), its type, ClusterIP,
    ports, selector and traffic policies; picks the port to probe."""

    id = "service-exists"
    hop = Hop.CLUSTER
    order = 100
    needs = (facts.CLUSTER,)
    provides = (facts.SERVICE, facts.ADDRESS, facts.ADDRESSES, facts.PORT, SERVICE_PORT)

    def run(self, ctx: RunContext) -> Finding:
        from k8sreach.cluster import ClusterError

        access = ctx.cluster()
        target = ctx.target
        try:
            svc = api_call(access.get_service, target.namespace, target.service)
        except ClusterError as exc:
            if exc.server_message == NO_SUCH_PATH:
                raise Unavailable(str(exc)) from None
            return self._missing(ctx, target)
        return judge(svc, target)

    @staticmethod
    def _missing(ctx: RunContext, target: Target) -> Finding:
        from k8sreach.cluster import ClusterError

        names: list[str] = []
        problem = None
        try:
            items = api_call(ctx.cluster().list_services, target.namespace)
            names = [
                n
                for s in items
                if isinstance(n := as_dict(as_dict(s).get("metadata")).get("name"), str)
            ]
        except Unavailable as exc:
            problem = exc.reason
        except ClusterError as exc:
            problem = str(exc)
        LOG.debug("service %s not found; namespace has %d services", target.short_name, len(names))
        return judge_missing(target, names, problem)
