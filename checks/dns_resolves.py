"""The `dns-resolves` check."""

from __future__ import annotations

import logging

from checks._common import cidr_list, range_of
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.config import IPNetwork
from k8sreach.context import RunContext
from k8sreach.dnsprobe import DnsOutcome, query, system_nameservers
from k8sreach.result import Finding, Hop, failed, passed
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

    if outcome.kind == "timeout":
        return failed(
            f"no answer from {server} within {outcome.latency_ms / 1000:g} s"
            if outcome.latency_ms
            else f"no answer from {server}",
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
            ),
            **kw,
        )
    if outcome.rcode != "NOERROR":
        return failed(f"{server} answered {outcome.rcode} for {name}", **kw)
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


class DnsResolves(Check):
    """Asks the DNS server for the Service's FQDN: NXDOMAIN, SERVFAIL, REFUSED, no answer,
    nothing listening, or an address outside the cluster ranges; evidence: server, rcode,
    flags, answers, latency."""

    id = "dns-resolves"
    hop = Hop.DNS
    order = 100
    provides = (facts.ADDRESS, facts.ADDRESSES)

    def run(self, ctx: RunContext) -> Finding:
        settings = ctx.settings
        if settings.dns is not None:
            server, port, origin = settings.dns.host, settings.dns.port, "--dns"
        else:
            servers = system_nameservers()
            if not servers:
                return failed(
                    "this client has no DNS server configured",
                    remediation="Configure the DNS proxy as the client's DNS server, or give "
                    "--dns SERVER.",
                )
            server, port, origin = servers[0], 53, "system resolver"
        outcome = query(server, port, ctx.target.fqdn, "A", ctx.probe_timeout())
        finding = classify(outcome, ctx.target, settings.service_cidr, settings.pod_cidr)
        finding.evidence["server_from"] = origin
        return finding
