"""The `kube-dns-direct` check."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

from checks._dns import dns_server, failure_text, transport_evidence
from k8sreach.check import Check
from k8sreach.config import Endpoint, Settings
from k8sreach.context import RunContext, Unavailable
from k8sreach.dnsprobe import DnsOutcome, query
from k8sreach.result import CheckResult, Finding, Hop, Status, failed, passed, warned
from k8sreach.target import Target

LOG = logging.getLogger(__name__)

# kubeadm gives kube-dns the 10th address of the service CIDR (10.96.0.10 in 10.96.0.0/12).
_KUBEADM_OFFSET = 10
# Finish this long before the run's deadline, so that waiting never turns into an overdue row.
_MARGIN_S = 0.25
_POLL_S = 0.02


def kube_dns_address(settings: Settings) -> tuple[Endpoint, str] | None:
    """Return kube-dns's address and where it came from: --kube-dns, else the 10th address of
    the first service CIDR (kubeadm's convention); None when neither is known."""
    if settings.kube_dns is not None:
        return settings.kube_dns, "--kube-dns"
    if not settings.service_cidr:
        return None
    net = settings.service_cidr[0]
    if net.num_addresses <= _KUBEADM_OFFSET:
        return None
    address = str(net.network_address + _KUBEADM_OFFSET)
    return Endpoint(address, 53), (
        f"the 10th address of the service CIDR {net}, kubeadm's convention (give --kube-dns "
        "when the cluster's differs)"
    )


@dataclass(frozen=True)
class ProxyView:
    """What dns-resolves got from the DNS proxy, as far as this check compares it.

    `state` is ok (it passed or warned), answered (a definite answer that failed: NXDOMAIN,
    NODATA, a foreign or stale address), upstream (a timeout, SERVFAIL or REFUSED: the
    proxy's upstream may be at fault) or down (nothing listening, unreachable, no server)."""

    server: str
    status: Status
    state: str
    outcome: str | None
    rcode: str | None
    answers: tuple[str, ...]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "status": str(self.status),
            "state": self.state,
            "outcome": self.outcome,
            "rcode": self.rcode,
            "answers": list(self.answers),
        }


def proxy_view(result: CheckResult | None) -> ProxyView | None:
    """Return dns-resolves' view of the proxy, or None when it has none (skip, crash, none)."""
    if result is None or result.status in (Status.SKIP, Status.ERROR):
        return None
    ev = result.evidence
    outcome, rcode = ev.get("outcome"), ev.get("rcode")
    if result.status in (Status.PASS, Status.WARN):
        state = "ok"
    elif outcome == "answer" and rcode in ("SERVFAIL", "REFUSED"):
        state = "upstream"
    elif outcome == "answer":
        state = "answered"
    elif outcome == "timeout":
        state = "upstream"
    else:
        state = "down"
    return ProxyView(
        str(ev.get("server") or result.address or "the DNS server"),
        result.status,
        state,
        outcome,
        rcode,
        tuple(ev.get("answers") or ()),
        result.summary,
    )


def _answers(outcome: DnsOutcome) -> bool:
    """True when kube-dns answered about the name (addresses, NODATA or NXDOMAIN)."""
    return outcome.kind == "answer" and outcome.rcode in ("NOERROR", "NXDOMAIN")


def _said(outcome: DnsOutcome) -> str:
    if outcome.rcode == "NOERROR" and outcome.addresses:
        return ", ".join(outcome.addresses)
    return "NODATA" if outcome.rcode == "NOERROR" else str(outcome.rcode)


def _proxy_said(proxy: ProxyView) -> str:
    if proxy.outcome != "answer":
        return {
            "timeout": "no answer",
            "port-unreachable": "nothing listening",
            "unreachable": "unreachable",
        }.get(str(proxy.outcome), proxy.summary)
    if proxy.rcode == "NOERROR" and proxy.answers:
        return ", ".join(proxy.answers)
    return "NODATA" if proxy.rcode == "NOERROR" else str(proxy.rcode)


def judge(
    direct: DnsOutcome, origin: str, proxy: ProxyView | None, target: Target, why: str = ""
) -> Finding:
    """Tell a broken DNS proxy from a broken kube-dns by asking kube-dns itself.

    `why` says why there is no proxy view to compare with, when `proxy` is None.
    """
    server = f"{direct.server}:{direct.port}"
    evidence: dict[str, Any] = {
        "server": server,
        "kube_dns_from": origin,
        "question": f"{direct.qname} {direct.qtype}",
        **transport_evidence(direct),
        "proxy": proxy.as_dict() if proxy else None,
    }
    kw: dict[str, Any] = {"evidence": evidence, "address": server}
    name = direct.qname
    dig = f"dig @{direct.server} -p {direct.port} {name}"
    latency = f"in {direct.latency_ms:g} ms" if direct.latency_ms is not None else ""
    kube_dns_checks = (
        "`kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide`, `kubectl -n kube-system "
        "get endpoints kube-dns` and `kubectl -n kube-system logs -l k8s-app=kube-dns`"
    )

    def verdict(text: str) -> None:
        evidence["verdict"] = text

    if _answers(direct):
        said = _said(direct)
        if proxy is None:
            verdict("not-compared")
            return passed(
                f"kube-dns {server} answers directly: {said} {latency} (not compared with the "
                f"DNS proxy: {why or 'dns-resolves has no answer'})",
                **kw,
            )
        same = direct.rcode == proxy.rcode and set(direct.addresses) == set(proxy.answers)
        if proxy.state == "ok" and same:
            verdict("same")
            return passed(
                f"kube-dns {server} answers directly as the DNS proxy {proxy.server} does: "
                f"{said} {latency}",
                **kw,
            )
        if proxy.state == "ok" and direct.rcode == "NOERROR" and direct.addresses:
            verdict("proxy-differs")
            return failed(
                f"the DNS proxy {proxy.server} answers {_proxy_said(proxy)} but kube-dns "
                f"{server} answers {said}: the proxy's answer is not kube-dns's",
                remediation=(
                    f"kube-dns is the source of the cluster's records, so the DNS proxy "
                    f"{proxy.server} passes on an old or foreign answer: a cache in the proxy "
                    "(restart it, or turn its cache off), or it forwards "
                    f"{target.cluster_domain} to another server. Compare `{dig}` with `dig "
                    f"@{proxy.server.rsplit(':', 1)[0]} {name}`."
                ),
                **kw,
            )
        if proxy.state == "ok":
            verdict("not-kube-dns")
            return warned(
                f"kube-dns {server} answers {said} directly while the DNS proxy "
                f"{proxy.server} answers {_proxy_said(proxy)}: {direct.server} may not be this "
                "cluster's kube-dns",
                remediation=(
                    f"Find kube-dns's ClusterIP with `kubectl -n kube-system get service "
                    f"kube-dns` and give it as --kube-dns IP (now: {origin})."
                ),
                **kw,
            )
        if proxy.state == "answered" and same:
            verdict("proxy-passes-answer-on")
            return passed(
                f"kube-dns {server} answers {said} directly, as the DNS proxy does: the proxy "
                "passes kube-dns's answer on; the name itself is the problem (see dns-resolves)",
                **kw,
            )
        verdict("proxy-at-fault")
        return passed(
            f"kube-dns {server} answers directly ({said} {latency}) but the DNS proxy "
            f"{proxy.server} does not ({_proxy_said(proxy)}): the DNS proxy is at fault",
            remediation=_proxy_fix(proxy, direct, target),
            **kw,
        )

    failure = failure_text(direct)
    if proxy is None:
        verdict("not-compared")
        return warned(
            f"kube-dns {server} does not answer directly ({failure}); not compared with the "
            f"DNS proxy: {why or 'dns-resolves has no answer'}",
            remediation=f"Check kube-dns: {kube_dns_checks}; and the path to {server}.",
            **kw,
        )
    if proxy.state == "upstream":
        verdict("kube-dns-or-path")
        return failed(
            f"neither kube-dns {server} ({failure}) nor the DNS proxy {proxy.server} "
            f"({_proxy_said(proxy)}) answers: kube-dns or the path to it is at fault",
            remediation=(
                f"The DNS proxy fails because its upstream does: kube-dns does not answer this "
                f"client either. Check kube-dns: {kube_dns_checks}; from a node, `{dig}`. If "
                f"kube-dns is healthy, the path to {direct.server} is broken: route-present and "
                "the gateway checks say where."
            ),
            **kw,
        )
    if proxy.state == "down":
        verdict("both-down")
        return warned(
            f"kube-dns {server} does not answer directly either ({failure}), and the DNS proxy "
            f"{proxy.server} is not there ({_proxy_said(proxy)}): fix the proxy first",
            remediation=(
                f"Two problems: the DNS proxy {proxy.server} (see dns-resolves), and kube-dns at "
                f"{server} not answering through the route. Check kube-dns: {kube_dns_checks}; "
                "and the path: route-present and the gateway checks."
            ),
            **kw,
        )
    verdict("path-to-cluster")
    return warned(
        f"kube-dns {server} does not answer through the route ({failure}) while the DNS proxy "
        f"{proxy.server} answers: the path from this client to the cluster is broken, not DNS",
        remediation=(
            f"This client's DNS works through the proxy, but {direct.server} in the service "
            "CIDR is not reachable from here, and the connection to the Service takes the "
            "same path: route-present, gateway-forwarding, kube-proxy-rules and tcp-connect "
            f"say where it stops. Check with `{dig}`."
        ),
        **kw,
    )


def _proxy_fix(proxy: ProxyView, direct: DnsOutcome, target: Target) -> str:
    kube_dns = f"{direct.server}:{direct.port}"
    host = proxy.server.rsplit(":", 1)[0].strip("[]")
    if proxy.state == "down":
        return (
            f"kube-dns answers at {kube_dns}, so the cluster's DNS is fine; the DNS proxy "
            f"{proxy.server} is not ({_proxy_said(proxy)}). Start the proxy (the nginx UDP "
            f"ingress on port 53) on {host} and check it there with `ss -ulpn 'sport = :53'`."
        )
    if proxy.state == "answered":
        return (
            f"kube-dns answers {_said(direct)} at {kube_dns}, but the DNS proxy {proxy.server} "
            f"answers {_proxy_said(proxy)}: it does not forward {target.cluster_domain} to "
            f"kube-dns (or forwards it to another cluster's DNS). Check its upstream "
            f"(nginx: `proxy_pass {kube_dns};`)."
        )
    return (
        f"kube-dns answers at {kube_dns} from this client, so the proxy's own path to kube-dns "
        f"is broken. On the proxy host {host}: `dig @{direct.server} -p {direct.port} "
        f"{direct.qname}`, its route to the service CIDR and the NAT rules for "
        f"{direct.server} (kube-proxy's, or its own DNAT), and its upstream setting (nginx: "
        f"`proxy_pass {kube_dns};`) and logs."
    )


def await_result(ctx: RunContext, check_id: str, limit_s: float) -> CheckResult | None:
    """Return another check's result once recorded, waiting at most limit_s (and never past
    the run's deadline); None when it did not come in time."""
    end = time.monotonic() + max(0.0, min(limit_s, ctx.remaining() - _MARGIN_S))
    while True:
        result = ctx.result(check_id)
        if result is not None or time.monotonic() >= end:
            return result
        time.sleep(_POLL_S)


class KubeDnsDirect(Check):
    """Asks kube-dns's ClusterIP directly through the route and compares with the DNS
    proxy's answer: tells a broken proxy (kube-dns answers) from a broken kube-dns or path
    (neither answers); evidence: kube-dns's address and where it came from, its answer,
    the proxy's."""

    id = "kube-dns-direct"
    hop = Hop.DNS
    order = 200
    explained_by = (
        "route-present",
        "gateway-forwarding",
        "kube-proxy-rules",
        "bgp-peer-established",
    )

    def run(self, ctx: RunContext) -> Finding:
        target = ctx.target
        if target.kind != "service":
            raise Unavailable("an Ingress run has no Service name to ask kube-dns for")
        found = kube_dns_address(ctx.settings)
        if found is None:
            raise Unavailable(
                "kube-dns's ClusterIP is not known: give --kube-dns IP or --service-cidr"
            )
        endpoint, origin = found
        server = dns_server(ctx.settings)
        if (
            server is not None
            and _same(server.host, endpoint.host)
            and server.port == endpoint.port
        ):
            raise Unavailable(
                f"the DNS server asked is kube-dns {endpoint} itself: dns-resolves asks it directly"
            )
        # Ask at once, alongside dns-resolves, then compare: a broken path costs one timeout.
        direct = query(endpoint.host, endpoint.port, target.fqdn, "A", ctx.probe_timeout())
        result = await_result(ctx, "dns-resolves", 2 * ctx.settings.timeout)
        why = ""
        if result is None:
            why = "dns-resolves did not finish in time"
        elif result.status in (Status.SKIP, Status.ERROR):
            why = f"dns-resolves did not run ({result.summary})"
        return judge(direct, origin, proxy_view(result), target, why)


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b
