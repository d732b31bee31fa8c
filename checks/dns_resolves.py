"""The `dns-resolves` check."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from checks._common import BACKENDS, cidr_list, range_of
from checks._dns import (
    ask_all,
    combine_transports,
    dns_server,
    no_server,
    replies_ignored,
    seconds,
    srv_question,
    with_srv,
)
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.config import IPNetwork
from k8sreach.context import RunContext
from k8sreach.dnsprobe import MAX_CNAME_HOPS, DnsOutcome
from k8sreach.result import Finding, Hop, Status, failed, passed, warned
from k8sreach.target import Target

LOG = logging.getLogger(__name__)


def classify(
    outcome: DnsOutcome,
    target: Target,
    service_cidrs: tuple[IPNetwork, ...],
    pod_cidrs: tuple[IPNetwork, ...],
) -> Finding:
    """Turn one DNS outcome into pass or one of the distinct DNS failures."""
    server = f"{outcome.server}:{outcome.port}"
    evidence: dict[str, object] = {
        "server": server,
        "question": f"{outcome.qname} {outcome.qtype}",
        "transport": outcome.transport,
        "rcode": outcome.rcode,
        "flags": list(outcome.flags),
        "answers": list(outcome.addresses),
        "cnames": list(outcome.cnames),
        "latency_ms": outcome.latency_ms,
    }
    if outcome.ignored_replies:
        evidence["ignored_replies"] = outcome.ignored_replies
    if outcome.notes:
        evidence["notes"] = list(outcome.notes)
    if outcome.error:
        evidence["error"] = outcome.error
    kw = {"evidence": evidence, "address": server}
    name = outcome.qname
    check_cmd = f"dig @{outcome.server} -p {outcome.port} {name}"

    if outcome.udp_truncated and outcome.kind != "answer":
        return _tcp_retry_failed(outcome, server, kw)
    if outcome.transport == "tcp" and outcome.kind == "port-unreachable":
        return failed(
            f"TCP to {server} is refused (nothing listens on TCP {outcome.port})",
            remediation=_tcp_advice(outcome, server),
            **kw,
        )
    waited = f" within {seconds(outcome.latency_ms)} s" if outcome.latency_ms else ""
    if outcome.kind == "timeout" and outcome.ignored_replies:
        return failed(
            f"no valid answer from {server}{waited}: "
            f"{replies_ignored(outcome.ignored_replies)} (not DNS, or not an answer to this "
            "question)",
            remediation=(
                f"Something sends replies from {server}, but none answers this question: "
                "the replies are not DNS, or carry another query id or question. Either the "
                "DNS server misbehaves, or something else answers in its place (another "
                f"service on port {outcome.port}, a firewall or middlebox that intercepts "
                f"DNS). Look at what comes back with `{check_cmd}` and `tcpdump -n -X host "
                f"{outcome.server} and port {outcome.port}` on this client."
            ),
            **kw,
        )
    if outcome.kind == "timeout":
        return failed(
            f"no answer from {server}{waited}",
            remediation=(
                f"The DNS server {server} did not answer. If it is the DNS proxy, check that it "
                f"is up and that its upstream (kube-dns) answers it: run `{check_cmd}` here, and "
                "on the proxy check the nginx UDP stream to kube-dns and its logs. A firewall "
                "dropping UDP 53 on the way looks the same."
            ),
            **kw,
        )
    if outcome.kind == "port-unreachable":
        return failed(
            f"nothing listens on {server} (ICMP port unreachable)",
            remediation=(
                f"The host {outcome.server} answered that no process listens on UDP port "
                f"{outcome.port}. Start the DNS proxy there (the nginx UDP ingress for port "
                f"53) and check it with `ss -ulpn 'sport = :{outcome.port}'` on that host."
            ),
            **kw,
        )
    if outcome.kind == "unreachable":
        return failed(
            f"the DNS server {server} is unreachable ({outcome.error})",
            remediation=(
                f"This client has no usable route to {outcome.server}. Check `ip route get "
                f"{outcome.server}` and the network link."
            ),
            **kw,
        )
    if outcome.kind != "answer":
        return failed(f"the query to {server} failed: {outcome.error}", **kw)

    if outcome.rcode == "NXDOMAIN":
        aa = " (authoritative)" if outcome.authoritative else ""
        return failed(
            f"NXDOMAIN{aa}: {server} says {name} does not exist",
            remediation=(
                f"Check that the Service exists: `kubectl get service {target.service} -n "
                f"{target.namespace}`. If it exists and is headless, it has no ready pods, so "
                f"kube-dns has no records for it: `kubectl get endpoints {target.service} -n "
                f"{target.namespace}`. Check the spelling of the name and of the namespace."
            ),
            **kw,
        )
    if outcome.rcode == "SERVFAIL":
        return failed(
            f"SERVFAIL: {server} could not get an answer for {name} from its upstream",
            remediation=(
                f"The DNS server {server} answers but its upstream failed. If it is the DNS "
                "proxy, check that it reaches kube-dns (its ClusterIP and the kube-dns pods): "
                "`kubectl -n kube-system get pods -l k8s-app=kube-dns`, and the proxy's logs."
            ),
            **kw,
        )
    if outcome.rcode == "REFUSED":
        return failed(
            f"REFUSED: {server} will not answer for {name}",
            remediation=(
                f"The DNS server {server} refuses the question: it does not serve or forward "
                f"the {target.cluster_domain} zone, or it cannot reach its upstream (some "
                "forwarders say REFUSED then). Check that the client uses the DNS proxy and "
                "that the proxy forwards to kube-dns."
                + (
                    ""
                    if outcome.recursion_available
                    else " Its answer has no RA flag: it offers no recursion, so it is an "
                    "authoritative-only server that does not forward to kube-dns."
                )
            ),
            **kw,
        )
    if outcome.rcode != "NOERROR":
        return failed(f"{server} answered {outcome.rcode} for {name}", **kw)
    if outcome.cname_loop and not outcome.addresses:
        return failed(
            f"the CNAME chain for {name} does not end (a loop, or longer than {MAX_CNAME_HOPS})",
            remediation=(
                f"{server} answers {name} with CNAMEs that lead back to a name already in "
                f"the chain (or more than {MAX_CNAME_HOPS} of them), so no address is ever "
                f"reached; the evidence lists the chain. Check the records with `{check_cmd}`. "
                "For an ExternalName Service, its externalName must not lead back to the "
                f"Service's own name: `kubectl get service {target.service} -n "
                f"{target.namespace} -o jsonpath='{{.spec.externalName}}'`."
            ),
            **kw,
        )
    if not outcome.addresses:
        return failed(
            f"{server} knows {name} but returned no {outcome.qtype} record (NODATA)",
            remediation=(
                "The name exists without an address: a headless Service with no ready pods, "
                "or an IPv6-only Service. Check `kubectl get endpoints "
                f"{target.service} -n {target.namespace}`."
            ),
            **kw,
        )

    answers = list(outcome.addresses)
    if not service_cidrs and not pod_cidrs:
        return passed(
            f"{name} -> {', '.join(answers)} in {outcome.latency_ms:g} ms (not compared with the "
            "cluster ranges: give --service-cidr and --pod-cidr)",
            facts={facts.ADDRESS: answers[0], facts.ADDRESSES: answers},
            **kw,
        )
    ranges = {a: range_of(a, service_cidrs, pod_cidrs) for a in answers}
    outside = [a for a, r in ranges.items() if r is None]
    evidence["ranges"] = ranges
    if outside:
        cidrs = cidr_list(service_cidrs) + cidr_list(pod_cidrs)
        return failed(
            f"{name} -> {', '.join(outside)}, outside the service and pod CIDRs "
            f"({', '.join(cidrs)})",
            remediation=(
                f"{server} answered with an address that is not the cluster's. The client may "
                "be asking a DNS server that is not the DNS proxy (a public or office resolver "
                "with a wildcard or search domain), or kube-dns serves a stale record. Ask the "
                f"proxy directly (`{check_cmd}`) and compare with `kubectl get service "
                f"{target.service} -n {target.namespace} -o wide`."
            ),
            **kw,
        )
    kinds = sorted(set(ranges.values()), key=str)
    what = (
        "ClusterIP"
        if kinds == ["service"]
        else "pod addresses (headless)"
        if kinds == ["pod"]
        else "cluster addresses"
    )
    return passed(
        f"{name} -> {', '.join(answers)} ({what}) in {outcome.latency_ms:g} ms",
        facts={facts.ADDRESS: answers[0], facts.ADDRESSES: answers},
        **kw,
    )


def _tcp_advice(outcome: DnsOutcome, server: str) -> str:
    """Return what to do when the DNS server does not answer over TCP."""
    return (
        f"An answer too large for one datagram comes back truncated (TC) and resolvers ask "
        f"again over TCP, which {server} does not answer. Let TCP port {outcome.port} through "
        f"to the DNS server and have the proxy listen on TCP {outcome.port} as well as UDP "
        f"(nginx: a stream server with `listen {outcome.port};` beside `listen "
        f"{outcome.port} udp;`); check with `dig +tcp @{outcome.server} -p {outcome.port} "
        f"{outcome.qname}`."
    )


def _tcp_retry_failed(outcome: DnsOutcome, server: str, kw: dict[str, Any]) -> Finding:
    """Return the failure of a truncated UDP answer whose retry over TCP failed."""
    if outcome.kind == "port-unreachable":
        what = f"TCP to the server is refused (nothing listens on TCP {outcome.port})"
    elif outcome.kind == "timeout":
        what = f"the retry over TCP got no answer within {seconds(outcome.latency_ms)} s"
        if outcome.ignored_replies:
            what += f" ({replies_ignored(outcome.ignored_replies)})"
    elif outcome.kind == "unreachable":
        what = f"TCP to the server is unreachable ({outcome.error})"
    else:
        what = f"the retry over TCP failed: {outcome.error}"
    return failed(
        f"the UDP answer from {server} was truncated (TC) and {what}",
        remediation=_tcp_advice(outcome, server),
        **kw,
    )


@dataclass(frozen=True)
class ApiView:
    """What the API says DNS should answer: `kind` is cluster-ip, headless, external-name or
    missing; `addresses` the IPv4 addresses an A query must return (sorted)."""

    kind: str
    addresses: tuple[str, ...] = ()
    external_name: str | None = None

    def describe(self) -> str:
        """Return what the API says, as the second half of a sentence."""
        listed = ", ".join(self.addresses) or "none"
        if self.kind == "cluster-ip":
            plural = "s are" if len(self.addresses) > 1 else " is"
            return f"the API says the ClusterIP{plural} {listed}"
        if self.kind == "headless":
            return f"the API's ready endpoints of the headless Service are {listed}"
        if self.kind == "external-name":
            return f"the API says it is an alias (CNAME) for {self.external_name}"
        return "the API has no such Service"


def _ipv4(addresses: Sequence[str]) -> tuple[str, ...]:
    found = []
    for text in addresses:
        try:
            if ipaddress.ip_address(text).version == 4:
                found.append(str(text))
        except ValueError:
            continue
    return tuple(sorted(set(found), key=ipaddress.ip_address))


def api_view(
    service: Mapping[str, Any] | None,
    backends: Mapping[str, Sequence[str]] | None,
    service_missing: bool = False,
) -> ApiView | None:
    """Return what DNS should answer for an A query according to the API, or None when the
    API's view is not known (no Service read, or a headless Service whose endpoints were not)."""
    if service is None:
        return ApiView("missing") if service_missing else None
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return ApiView("external-name", external_name=str(spec.get("externalName") or ""))
    if spec.get("clusterIP") == "None":
        if backends is None:
            return None
        published = list(backends.get("ready") or [])
        # kube-dns publishes not-ready pods too when the Service asks for it
        if spec.get("publishNotReadyAddresses"):
            published += list(backends.get("not_ready") or [])
        return ApiView("headless", _ipv4(published))
    cluster_ips = list(spec.get("clusterIPs") or []) or [str(spec.get("clusterIP") or "")]
    return ApiView("cluster-ip", _ipv4(cluster_ips))


def compare_with_api(
    finding: Finding,
    outcome: DnsOutcome,
    target: Target,
    view: ApiView,
    service_cidrs: tuple[IPNetwork, ...] = (),
    pod_cidrs: tuple[IPNetwork, ...] = (),
) -> Finding:
    """Judge a DNS answer against the API's view: the same addresses pass; a stale or foreign
    answer fails showing both. Failures before an answer (timeout, NXDOMAIN) stay as they are."""
    evidence = dict(finding.evidence)
    evidence["api_kind"] = view.kind
    evidence["api_addresses"] = list(view.addresses)
    if view.external_name is not None:
        evidence["api_external_name"] = view.external_name
    base = replace(finding, evidence=evidence)
    has_records = view.kind != "missing" and (view.kind != "headless" or bool(view.addresses))
    if outcome.kind == "answer" and outcome.rcode == "NXDOMAIN" and has_records:
        return replace(
            base,
            summary=f"{finding.summary}, but {view.describe()}",
            remediation=(
                f"The Service exists, so the DNS server {outcome.server}:{outcome.port} does not "
                f"answer from kube-dns: check that it is the DNS proxy and forwards "
                f"{target.cluster_domain} to kube-dns, that the cluster domain really is "
                f"{target.cluster_domain} (else give --cluster-domain), and that kube-dns is "
                "healthy: `kubectl -n kube-system logs -l k8s-app=kube-dns`."
            ),
        )
    if outcome.kind != "answer" or outcome.rcode != "NOERROR" or outcome.cname_loop:
        return base
    if view.kind == "cluster-ip" and not view.addresses:
        return base  # an IPv6-only Service: an A query cannot be compared
    name = outcome.qname
    answers = list(outcome.addresses)
    got = _ipv4(answers)
    latency = f"in {outcome.latency_ms:g} ms"
    kw: dict[str, Any] = {"evidence": evidence, "address": finding.address}
    found = {facts.ADDRESS: answers[0], facts.ADDRESSES: answers} if answers else {}
    check_cmd = f"dig @{outcome.server} -p {outcome.port} {name}"
    kubectl = f"kubectl get service {target.service} -n {target.namespace} -o wide"

    if view.kind == "external-name":
        alias = (view.external_name or "").rstrip(".").lower()
        cnames = [c.rstrip(".").lower() for c in outcome.cnames]
        if alias in cnames and answers:
            return passed(
                f"{name} -> CNAME {view.external_name} -> {', '.join(answers)} (ExternalName, "
                f"as the API says) {latency}",
                facts=found,
                **kw,
            )
        if alias in cnames:
            return failed(
                f"{name} -> CNAME {view.external_name}, which has no address",
                remediation=f"The alias target does not resolve: `{check_cmd}`; check the "
                f"name in the Service (`{kubectl}`) and that {view.external_name} exists.",
                **kw,
            )
        said = ", ".join(outcome.cnames or answers) or "nothing"
        return failed(
            f"DNS answers {said} but {view.describe()}",
            remediation=f"kube-dns should answer a CNAME for an ExternalName Service. Compare "
            f"`{check_cmd}` with `{kubectl}`; a DNS server other than the proxy may have "
            "answered.",
            **kw,
        )

    if not got:
        return base  # NODATA: classify's failure already says it
    if got == view.addresses:
        what = "ClusterIP" if view.kind == "cluster-ip" else "pod addresses (headless)"
        ranges_given = bool(service_cidrs or pod_cidrs)
        if ranges_given and any(range_of(a, service_cidrs, pod_cidrs) is None for a in got):
            return warned(
                f"{name} -> {', '.join(answers)} ({what}, as the API says) {latency}, but "
                f"outside the given ranges ({', '.join(cidr_list(service_cidrs + pod_cidrs))})",
                remediation="The API allocated these addresses, so the --service-cidr/"
                "--pod-cidr given to k8sreach (or the profile) are probably wrong.",
                facts=found,
                **kw,
            )
        return passed(
            f"{name} -> {', '.join(answers)} ({what}, as the API says) {latency}",
            facts=found,
            **kw,
        )

    stale = [a for a in got if a not in view.addresses]
    missing = [a for a in view.addresses if a not in got]
    evidence["unexpected"] = stale
    evidence["missing"] = missing
    foreign = (service_cidrs or pod_cidrs) and any(
        range_of(a, service_cidrs, pod_cidrs) is None for a in stale
    )
    label = "not a cluster address" if foreign else "stale record"
    if view.kind == "headless" and stale and missing:
        label = f"stale: {', '.join(stale)}; missing: {', '.join(missing)}"
    elif view.kind == "headless" and missing:
        label = f"missing: {', '.join(missing)}"
    return failed(
        f"DNS answers {', '.join(got)} but {view.describe()} ({label})",
        remediation=(
            f"The DNS answer differs from the API. A cache on the way (the DNS proxy, or a "
            f"resolver cache on this client) or kube-dns itself holds an old record, or a "
            f"DNS server other than the cluster's answered. Compare `{check_cmd}` with "
            f"`{kubectl}`; restart the DNS proxy to drop its cache, and check kube-dns: "
            "`kubectl -n kube-system logs -l k8s-app=kube-dns`."
        ),
        **kw,
    )


def explained_by_api(finding: Finding, outcome: DnsOutcome, view: ApiView | None) -> str | None:
    """Return the cluster check whose failure explains this DNS failure, if any: NXDOMAIN for
    a Service the API lacks, or no record for a headless Service without ready endpoints."""
    if finding.status is not Status.FAIL or view is None or outcome.kind != "answer":
        return None
    if view.kind == "missing" and outcome.rcode == "NXDOMAIN":
        return "service-exists"
    no_record = outcome.rcode == "NXDOMAIN" or (
        outcome.rcode == "NOERROR" and not outcome.addresses
    )
    if view.kind == "headless" and not view.addresses and no_record:
        return "endpoints-ready"
    return None


class DnsResolves(Check):
    """Asks the DNS server for the Service's FQDN over UDP and over TCP: NXDOMAIN, SERVFAIL,
    REFUSED, no answer, nothing listening, an address outside the cluster ranges, or one
    transport failing; for a named port, its number from the SRV record; evidence: server,
    rcode, flags (TC, AA, RA), answers and latency per transport, the SRV answer."""

    id = "dns-resolves"
    hop = Hop.DNS
    order = 100
    # not facts.ENDPOINTS: kube-proxy-rules provides it too and needs the address from here
    wants = (facts.SERVICE, BACKENDS)
    # PORT (from SRV) is published but not declared: endpoints-ready wants PORT and provides
    # BACKENDS, which this check wants, so declaring it would make a cycle. The checks that
    # need PORT need ADDRESS as well, so they wait for this one anyway.
    provides = (facts.ADDRESS, facts.ADDRESSES)
    # service-exists and endpoints-ready come later on the path: run() marks caused_by
    # itself (see explained_by_api). kube-dns-direct fails only when kube-dns does not
    # answer directly either while the proxy's failure is one of its upstream's.
    explained_by = ("service-exists", "endpoints-ready", "kube-dns-direct")

    def run(self, ctx: RunContext) -> Finding:
        settings = ctx.settings
        server = dns_server(settings)
        if server is None:
            return no_server()
        target = ctx.target
        questions = [("udp", target.fqdn, "A"), ("tcp", target.fqdn, "A")]
        named_port = isinstance(target.port, str) and not ctx.has_fact(facts.PORT)
        if named_port:
            questions.append(("udp", srv_question(target), "SRV"))
        outcomes = ask_all(questions, server.host, server.port, ctx.probe_timeout())
        outcome, tcp = outcomes[0], outcomes[1]
        cidrs = (settings.service_cidr, settings.pod_cidr)
        finding = classify(outcome, target, *cidrs)
        finding.evidence["server_from"] = server.origin
        missing = ctx.result("service-exists")
        view = api_view(
            ctx.fact(facts.SERVICE),
            ctx.fact(BACKENDS),
            service_missing=missing is not None and missing.evidence.get("found") is False,
        )
        if view is not None:
            finding = compare_with_api(finding, outcome, target, view, *cidrs)
            cause = explained_by_api(finding, outcome, view)
            cause_result = ctx.result(cause) if cause else None
            if cause_result is not None and cause_result.status is Status.FAIL:
                finding = replace(finding, caused_by=cause)
        combined = combine_transports(finding, outcome, tcp, classify(tcp, target, *cidrs))
        if finding.caused_by:
            combined = replace(combined, caused_by=finding.caused_by)
        if named_port:
            combined = with_srv(combined, outcomes[2], target)
        return combined
