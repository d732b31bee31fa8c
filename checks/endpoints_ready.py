"""The `endpoints-ready` check."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checks._common import (
    BACKENDS,
    NO_SUCH_PATH,
    SERVICE_PORT,
    api_call,
    as_dict,
    as_ip,
    as_str,
    clean_port_entry,
    host_port,
    label_selector,
    type_name,
)
from checks.service_exists import is_headless, port_text
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.result import Finding, Hop, failed, passed, skipped
from k8sreach.target import Target

LOG = logging.getLogger(__name__)

_SHOWN = 3  # addresses named in the one-line summary; evidence has them all


@dataclass(frozen=True)
class Endpoint:
    """One address behind the Service with the ports it serves, from a slice or Endpoints."""

    ip: str
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol); name '' when unnamed
    ready: bool
    serving: bool
    terminating: bool = False
    pod: str | None = None
    node: str | None = None
    hostname: str | None = None

    def doc(self, port: int | None) -> dict[str, Any]:
        """Return the endpoint as evidence, with the port number for the probed port."""
        return {
            "ip": self.ip,
            "port": port,
            "pod": self.pod,
            "node": self.node,
            "hostname": self.hostname,
            "ready": self.ready,
            "serving": self.serving,
            "terminating": self.terminating,
        }


def _ports(entries: object, where: str, notes: list[str]) -> tuple[tuple[str, int, str], ...]:
    if entries is not None and not isinstance(entries, list):
        notes.append(f"{where}.ports is {type_name(entries)}, not a list: ignored")
        return ()
    kept = []
    for i, entry in enumerate(entries or []):
        doc = clean_port_entry(entry, f"{where}.ports[{i}]", notes)
        if doc is not None:
            kept.append((str(doc.get("name") or ""), int(doc["port"]), str(doc["protocol"])))
    return tuple(kept)


def _addresses(values: object, where: str, notes: list[str]) -> list[str]:
    """Return the IP addresses of a list; anything else dropped with a note, never trusted."""
    if not isinstance(values, list):
        if values is not None:
            notes.append(f"{where} is {type_name(values)}, not a list: ignored")
        return []
    kept = []
    for value in values:
        ip = as_ip(value)
        if ip is None:
            notes.append(f"{where} holds {_value_text(value)}, not an IP address: ignored")
        else:
            kept.append(ip)
    return kept


def _value_text(value: object) -> str:
    return repr(value)[:40] if isinstance(value, (str, int)) else type_name(value)


def _pod_of(entry: Mapping[str, Any]) -> str | None:
    ref = as_dict(entry.get("targetRef"))
    return as_str(ref.get("name")) if ref.get("kind", "Pod") == "Pod" else None


def from_slices(
    slices: Sequence[Mapping[str, Any]], notes: list[str] | None = None
) -> list[Endpoint]:
    """Return the endpoints of discovery.k8s.io/v1 EndpointSlices, one per address; what is
    malformed (an address that is no IP, a port that is no number) is left out, noted."""
    notes = [] if notes is None else notes
    found = []
    for n, piece in enumerate(slices):
        if not isinstance(piece, Mapping):
            notes.append(f"EndpointSlice #{n} is {type_name(piece)}: ignored")
            continue
        name = as_str(as_dict(piece.get("metadata")).get("name")) or f"#{n}"
        ports = _ports(piece.get("ports"), f"EndpointSlice {name}", notes)
        raw = piece.get("endpoints")
        if raw is not None and not isinstance(raw, list):
            notes.append(f"EndpointSlice {name}.endpoints is {type_name(raw)}: ignored")
        for i, entry in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(entry, Mapping):
                notes.append(f"EndpointSlice {name}.endpoints[{i}] is {type_name(entry)}: ignored")
                continue
            cond = as_dict(entry.get("conditions"))
            terminating = cond.get("terminating") is True
            # the API: a missing ready counts as true unless terminating; serving as ready
            said_ready, said_serving = cond.get("ready"), cond.get("serving")
            ready = (not terminating) if said_ready is None else said_ready is True
            serving = ready if said_serving is None else said_serving is True
            where = f"EndpointSlice {name}.endpoints[{i}].addresses"
            for ip in _addresses(entry.get("addresses"), where, notes):
                found.append(
                    Endpoint(
                        ip,
                        ports,
                        ready,
                        serving,
                        terminating,
                        _pod_of(entry),
                        as_str(entry.get("nodeName")),
                        as_str(entry.get("hostname")),
                    )
                )
    return found


def from_endpoints(obj: Mapping[str, Any] | None, notes: list[str] | None = None) -> list[Endpoint]:
    """Return the endpoints of a v1 Endpoints object (addresses and notReadyAddresses); what
    is malformed is left out, noted."""
    notes = [] if notes is None else notes
    subsets = as_dict(obj).get("subsets")
    if subsets is not None and not isinstance(subsets, list):
        notes.append(f"Endpoints.subsets is {type_name(subsets)}: ignored")
    found = []
    for n, subset in enumerate(subsets if isinstance(subsets, list) else []):
        if not isinstance(subset, Mapping):
            notes.append(f"Endpoints.subsets[{n}] is {type_name(subset)}: ignored")
            continue
        ports = _ports(subset.get("ports"), f"Endpoints.subsets[{n}]", notes)
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            entries = subset.get(key)
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                where = f"Endpoints.subsets[{n}].{key}[{i}].ip"
                if not isinstance(entry, Mapping):
                    notes.append(f"Endpoints.subsets[{n}].{key}[{i}] is {type_name(entry)}")
                    continue
                for ip in _addresses([entry.get("ip")], where, notes):
                    found.append(
                        Endpoint(
                            ip,
                            ports,
                            ready,
                            ready,
                            pod=_pod_of(entry),
                            node=as_str(entry.get("nodeName")),
                            hostname=as_str(entry.get("hostname")),
                        )
                    )
    return found


def port_of(endpoint: Endpoint, service_port: Mapping[str, Any] | None) -> int | None:
    """Return the endpoint's number for a Service port (paired by name, as kube-proxy does);
    None when it does not serve it. With no Service port chosen: any port, its first one."""
    if service_port is None:
        return endpoint.ports[0][1] if endpoint.ports else None
    name = str(service_port.get("name") or "")
    protocol = str(service_port.get("protocol") or "TCP")
    for port_name, number, port_protocol in endpoint.ports:
        if port_name == name and port_protocol == protocol:
            return number
    return None


@dataclass(frozen=True)
class Split:
    """The endpoints for the probed port: ready and not ready, and every IP by readiness."""

    ready: tuple[tuple[Endpoint, int | None], ...]
    not_ready: tuple[tuple[Endpoint, int | None], ...]
    ready_ips: tuple[str, ...]  # any port: what DNS publishes for a headless Service
    not_ready_ips: tuple[str, ...]
    other_port_names: tuple[str, ...]  # port names the endpoints carry instead


def split(endpoints: Sequence[Endpoint], service_port: Mapping[str, Any] | None) -> Split:
    """Sort endpoints into ready and not ready for the probed port, one row per address."""
    ready: dict[str, tuple[Endpoint, int | None]] = {}
    not_ready: dict[str, tuple[Endpoint, int | None]] = {}
    any_ready: dict[str, None] = {}
    seen: dict[str, None] = {}
    names: dict[str, None] = {}
    for ep in endpoints:
        seen.setdefault(ep.ip)
        if ep.ready:
            any_ready.setdefault(ep.ip)
        number = port_of(ep, service_port)
        if service_port is not None and number is None:
            names.update((n or "(unnamed)", None) for n, _, _ in ep.ports)
            continue
        (ready if ep.ready else not_ready).setdefault(ep.ip, (ep, number))
    for ip in ready:
        not_ready.pop(ip, None)
    return Split(
        tuple(ready.values()),
        tuple(not_ready.values()),
        tuple(any_ready),
        tuple(ip for ip in seen if ip not in any_ready),
        tuple(names),
    )


def pod_state(pod: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Pod's readiness as evidence: name, phase, ready, and the reason it is not."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_cond = conditions.get("Ready") or {}
    ready = ready_cond.get("status") == "True"
    reason, message = ready_cond.get("reason"), ready_cond.get("message")
    scheduled = conditions.get("PodScheduled") or {}
    if meta.get("deletionTimestamp"):
        reason, message = "Terminating", "the pod is being deleted"
    elif scheduled.get("status") == "False":
        reason, message = scheduled.get("reason") or "NotScheduled", scheduled.get("message")
    elif status.get("phase") in ("Failed", "Succeeded"):
        reason = status.get("phase")
    else:
        for cs in status.get("containerStatuses") or []:
            if cs.get("ready"):
                continue
            state = cs.get("state") or {}
            waiting = state.get("waiting") or {}
            terminated = state.get("terminated") or {}
            if waiting.get("reason"):
                reason = waiting["reason"]
                message = waiting.get("message") or f"container {cs.get('name')} is waiting"
            elif terminated:
                reason = terminated.get("reason") or "Terminated"
                message = f"container {cs.get('name')} exited {terminated.get('exitCode')}"
            elif state.get("running"):
                reason = "ReadinessProbe"
                message = f"container {cs.get('name')} runs but its readiness probe fails"
            break
    doc: dict[str, Any] = {
        "name": meta.get("name"),
        "phase": status.get("phase"),
        "ready": ready and not meta.get("deletionTimestamp"),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "ip": status.get("podIP"),
    }
    if not doc["ready"]:
        doc["reason"] = reason
        doc["message"] = message
    return doc


def container_port_names(pod: Mapping[str, Any]) -> list[str]:
    """Return every named container port of a Pod, with its number: 'mysql=3306/TCP'."""
    found = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            label = f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}"
            found.append(f"{p['name']}={label}" if p.get("name") else f"{label} (unnamed)")
    return found


def why_none_ready(
    svc: Mapping[str, Any],
    service_port: Mapping[str, Any] | None,
    parts: Split,
    pods: Sequence[Mapping[str, Any]] | None,
    pods_problem: str | None,
) -> tuple[str, str, dict[str, Any]]:
    """Return (reason, remediation, evidence) for a Service with no ready endpoint."""
    meta = svc.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name")
    spec = svc.get("spec") or {}
    selector = dict(spec.get("selector") or {})
    sel = label_selector(selector)
    port_name = str((service_port or {}).get("name") or "")
    evidence: dict[str, Any] = {}

    if not selector:
        if parts.other_port_names:
            names = ", ".join(f"'{n}'" for n in parts.other_port_names)
            wanted = f"'{port_name}'" if port_name else "unnamed"
            return (
                f"the Endpoints written for this selector-less Service carry port(s) {names}, "
                f"but the Service port is {wanted}: kube-proxy pairs them by name",
                f"Give the Endpoints' port the Service port's name ({wanted}): `kubectl edit "
                f"endpoints {name} -n {ns}`, or rename the Service port.",
                evidence,
            )
        if parts.not_ready:
            return (
                "the Endpoints written for this selector-less Service list only not-ready "
                "addresses",
                f"Move the addresses to `addresses` (ready): `kubectl edit endpoints {name} -n "
                f"{ns}`.",
                evidence,
            )
        return (
            "the Service has no selector and no Endpoints (or EndpointSlice) was written for it",
            f"A Service without selector forwards only to addresses written by hand: create "
            f"Endpoints named {name} in {ns} listing the backend's address and the port "
            f"{port_name or '(unnamed)'}, or give the Service a selector: `kubectl get endpoints "
            f"{name} -n {ns} -o yaml`.",
            evidence,
        )

    if pods is None:
        evidence["pods_error"] = pods_problem
        return (
            f"the pods behind selector {sel} could not be read ({pods_problem})",
            f"Run `kubectl get pods -n {ns} -l {sel}` and `kubectl describe endpoints {name} -n "
            f"{ns}`.",
            evidence,
        )
    states = []
    for pod in pods:
        # A Pod object of the wrong shape is the API's problem, not a crash of ours.
        try:
            states.append(pod_state(pod))
        except (AttributeError, TypeError, ValueError, KeyError):
            states.append(
                {
                    "name": "?",
                    "ready": False,
                    "reason": "MalformedPod",
                    "message": "the API returned a Pod of the wrong shape",
                }
            )
    evidence["pods"] = states
    if not pods:
        return (
            f"no pods match the selector {sel} in namespace {ns}",
            f"No pod carries the labels {sel}. Compare the Service's selector with the pods' "
            f"labels: `kubectl get pods -n {ns} --show-labels`; fix the one that is wrong "
            f"(`kubectl edit service {name} -n {ns}`, or the workload's pod template), or start "
            "the workload if it is scaled to zero.",
            evidence,
        )
    ready_pods = [s for s in states if s["ready"]]
    if not ready_pods:
        listed = ", ".join(f"{s['name']} ({s.get('reason') or 'not Ready'})" for s in states[:4])
        more = f" and {len(states) - 4} more" if len(states) > 4 else ""
        first = states[0]["name"]
        return (
            f"{len(states)} pod(s) match {sel} but none is Ready: {listed}{more}",
            f"See why the pods are not Ready: `kubectl describe pod {first} -n {ns}` (events, "
            f"readiness probe) and `kubectl logs {first} -n {ns}`.",
            evidence,
        )
    target_port = (service_port or {}).get("targetPort")
    if isinstance(target_port, str):
        by_name = {s["name"]: p for s, p in zip(states, pods, strict=True)}
        lacking = [
            s["name"]
            for s in ready_pods
            if not any(
                entry.startswith(f"{target_port}=")
                for entry in container_port_names(by_name[s["name"]])
            )
        ]
        if lacking:
            declared = container_port_names(by_name[lacking[0]]) or ["no ports"]
            evidence["port_name_missing_on"] = lacking
            return (
                f"the Service's targetPort '{target_port}' is not a named port of the pods' "
                f"containers ({lacking[0]} declares {', '.join(declared)})",
                f"The endpoints controller resolves targetPort '{target_port}' by the "
                "containers' port names. Name the container port `name: "
                f"{target_port}` in the pod template, or set the Service's targetPort to the "
                f"number: `kubectl edit service {name} -n {ns}`.",
                evidence,
            )
    return (
        f"{len(ready_pods)} pod(s) matching {sel} are Ready, yet no endpoint is ready for the "
        "port (the endpoints controller may not have caught up)",
        f"Compare `kubectl get endpointslices -n {ns} -l kubernetes.io/service-name={name} -o "
        f"yaml` with `kubectl get pods -n {ns} -l {sel} -o wide`; check kube-controller-manager.",
        evidence,
    )


def _describe(ep: Endpoint, port: int | None) -> str:
    text = host_port(ep.ip, port)
    if ep.pod and ep.node:
        return f"{text} ({ep.pod} on {ep.node})"
    if ep.pod:
        return f"{text} ({ep.pod})"
    return f"{text} (no pod: written by hand)" if ep.node is None else f"{text} (on {ep.node})"


def _listing(rows: Sequence[tuple[Endpoint, int | None]]) -> str:
    text = ", ".join(_describe(ep, port) for ep, port in rows[:_SHOWN])
    return text + (f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else "")


def judge(
    svc: Mapping[str, Any],
    service_port: Mapping[str, Any] | None,
    endpoints: Sequence[Endpoint],
    source: str,
    pods: Sequence[Mapping[str, Any]] | None = None,
    pods_problem: str | None = None,
    dropped: Sequence[str] = (),
) -> Finding:
    """Pass with the ready endpoints of the probed port, or fail saying why there are none;
    `dropped` notes the malformed parts of the API's answer left out."""
    parts = split(endpoints, service_port)
    port_label = (
        f"port {port_text(service_port)}" if service_port is not None else "any of its ports"
    )
    evidence: dict[str, Any] = {
        "source": source,
        "port": port_text(service_port) if service_port is not None else None,
        "ready": [ep.doc(port) for ep, port in parts.ready],
        "not_ready": [ep.doc(port) for ep, port in parts.not_ready],
    }
    if parts.other_port_names:
        evidence["other_port_names"] = list(parts.other_port_names)
    if dropped:
        evidence["malformed_parts_ignored"] = list(dropped)
    found: dict[str, Any] = {
        facts.ENDPOINTS: [host_port(ep.ip, port) for ep, port in parts.ready],
        BACKENDS: {"ready": list(parts.ready_ips), "not_ready": list(parts.not_ready_ips)},
    }

    if not parts.ready:
        reason, remediation, more = why_none_ready(svc, service_port, parts, pods, pods_problem)
        evidence.update(more)
        evidence["why"] = reason
        not_ready = f" ({len(parts.not_ready)} not ready)" if parts.not_ready else ""
        return failed(
            f"no ready endpoints for {port_label}{not_ready}: {reason}",
            evidence=evidence,
            remediation=remediation,
            facts=found,
        )

    first, first_port = parts.ready[0]
    if is_headless(svc):
        # nothing stands in front of a headless Service's pods: probe one of them directly
        found[facts.ADDRESS] = first.ip
        found[facts.ADDRESSES] = [ep.ip for ep, _ in parts.ready]
        tcp = (service_port or {}).get("protocol", "TCP") == "TCP"
        if service_port is not None and first_port and tcp:
            found[facts.PORT] = first_port
    summary = f"{len(parts.ready)} ready for {port_label}: {_listing(parts.ready)}"
    if parts.not_ready:
        summary += f"; not ready: {_listing(parts.not_ready)}"
    if dropped:
        summary += f"; ignored {len(dropped)} malformed part(s) of the API's answer: {dropped[0]}"
    return passed(
        summary,
        evidence=evidence,
        address=host_port(first.ip, first_port),
        facts=found,
    )


class EndpointsReady(Check):
    """Reads the Service's EndpointSlices (or Endpoints): ready and not-ready addresses of the
    probed port with their pods and nodes; none ready: no pods match, pods not Ready, or the
    port name is not on the pods."""

    id = "endpoints-ready"
    hop = Hop.CLUSTER
    order = 200
    needs = (facts.CLUSTER, facts.SERVICE)
    wants = (facts.PORT, SERVICE_PORT)
    provides = (facts.ENDPOINTS, facts.ADDRESS, facts.ADDRESSES, facts.PORT, BACKENDS)

    def run(self, ctx: RunContext) -> Finding:
        svc = ctx.fact(facts.SERVICE)
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return skipped(
                f"an ExternalName Service has no endpoints: DNS answers a CNAME for "
                f"{spec.get('externalName')}"
            )
        access = ctx.cluster()
        dropped: list[str] = []
        endpoints, source = self._read(access, ctx.target, dropped)
        service_port = ctx.fact(SERVICE_PORT)
        parts = split(endpoints, service_port)
        pods = None
        problem = None
        selector = spec.get("selector") or {}
        if not parts.ready and selector:
            try:
                pods = api_call(access.list_pods, ctx.target.namespace, selector)
            except Unavailable as exc:
                problem = exc.reason
        return judge(svc, service_port, endpoints, source, pods, problem, dropped)

    @staticmethod
    def _read(access: Any, target: Target, notes: list[str]) -> tuple[list[Endpoint], str]:
        """Return the endpoints from the slices, else (not served, or none) from Endpoints."""
        from k8sreach.cluster import ClusterError

        served = True
        try:
            slices = api_call(access.list_endpoint_slices, target.namespace, target.service)
        except ClusterError as exc:
            if exc.server_message != NO_SUCH_PATH:
                raise Unavailable(str(exc)) from None
            LOG.debug("EndpointSlices are not served; reading Endpoints")
            served, slices = False, []
        if slices:
            return from_slices(slices, notes), "endpointslices"
        # no slice: an old cluster, or hand-written Endpoints not mirrored (yet)
        try:
            obj = api_call(access.get_endpoints, target.namespace, target.service)
        except ClusterError:
            return [], "endpointslices" if served else "endpoints"
        return from_endpoints(obj, notes), "endpoints"
