"""The `kube-proxy-rules` check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checks import _gateway
from checks._common import range_of
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.result import Finding, Hop, failed, passed, skipped

if TYPE_CHECKING:  # parsers load when the gateway is read, not at every start
    from k8sreach.parsers.iptables import ServiceRules
    from k8sreach.parsers.ipvs import IpvsTable, VirtualService


def judge(
    rules: ServiceRules | None,
    ipvs: VirtualService | None,
    address: str,
    port: int,
    mode: str,
    svc: str,
) -> Finding:
    """DNAT to endpoints passes; REJECT for "has no endpoints" and no rule at all fail."""
    where = f"{address}:{port}"
    evidence: dict[str, Any] = {"cluster_ip": address, "port": port, "mode": mode}
    if ipvs is not None:
        servers = [r.endpoint for r in ipvs.real_servers]
        evidence.update(
            virtual_service=ipvs.line,
            endpoints=servers,
            real_servers=[r.line for r in ipvs.real_servers],
        )
        if servers:
            return passed(
                f"IPVS balances {where} over {len(servers)} endpoint(s): {', '.join(servers)}",
                evidence=evidence,
                facts={facts.ENDPOINTS: servers},
            )
        return failed(
            f"IPVS has {where} but no real servers: the Service has no ready endpoints",
            evidence=evidence,
            remediation=f"kube-proxy found no ready endpoints. Check `kubectl get endpoints {svc}`"
            " and the pods' readiness.",
        )
    assert rules is not None
    evidence.update(
        kind=rules.kind,
        endpoints=list(rules.endpoints),
        rules=list(rules.evidence),
        chains=list(rules.chains),
        service=rules.service,
    )
    if rules.kind == "dnat":
        return passed(
            f"{where} is DNATed to {len(rules.endpoints)} endpoint(s): "
            f"{', '.join(rules.endpoints)}" + (f" ({rules.service})" if rules.service else ""),
            evidence=evidence,
            facts={facts.ENDPOINTS: list(rules.endpoints)},
        )
    if rules.kind in ("reject", "drop"):
        verb = "rejects" if rules.kind == "reject" else "drops"
        return failed(
            f"kube-proxy {verb} {where}: the Service has no endpoints"
            + (f" ({rules.service})" if rules.service else ""),
            evidence=evidence,
            remediation=(
                f"kube-proxy installed its rule for a Service without ready endpoints. Check "
                f"`kubectl get endpoints {svc}`, that the Service's selector matches the pods "
                "(`kubectl get pods -l ...`), and that the pods are Ready."
            ),
        )
    return failed(
        f"no kube-proxy rule for {where} in {mode}: kube-proxy is not syncing this Service",
        evidence=evidence,
        remediation=(
            f"No rule in KUBE-SERVICES matches {where}. On the gateway check that kube-proxy "
            "runs and syncs (`systemctl status kube-proxy`, `journalctl -u kube-proxy -n 50`; "
            "its metrics at :10249/metrics show the last sync), that it reaches the API server, "
            f"and that {where} really is the Service's ClusterIP and port "
            f"(`kubectl get service {svc}`)."
        ),
    )


class KubeProxyRules(Check):
    """Reads the gateway's NAT rules for the ClusterIP and port (iptables legacy and nft,
    nftables mode, IPVS): DNAT to endpoints, REJECT for a Service without endpoints, or no
    rule at all (kube-proxy not syncing); evidence: the rules followed and the endpoints."""

    id = "kube-proxy-rules"
    hop = Hop.GATEWAY
    order = 400
    needs = (facts.GATEWAY, facts.ADDRESS, facts.PORT)
    provides = (facts.ENDPOINTS,)

    def run(self, ctx: RunContext) -> Finding:
        from k8sreach.parsers.iptables import service_rules
        from k8sreach.parsers.ipvs import ipvs_service
        from k8sreach.parsers.nft import kube_proxy_service

        address = str(ctx.fact(facts.ADDRESS))
        port = int(ctx.fact(facts.PORT))
        svc = f"{ctx.target.service} -n {ctx.target.namespace}"
        where = _gateway.label(ctx)
        if range_of(address, (), ctx.settings.pod_cidr) == "pod":
            return skipped(
                f"{address} is a pod address (a headless Service): no ClusterIP rules to check",
                address=where,
            )

        ipvs = _read_ipvs(ctx)
        found = ipvs_service(ipvs, address, port) if ipvs is not None else None
        if found is not None:
            return self._at(judge(None, found, address, port, "IPVS", svc), where)

        fw = _gateway.firewall(ctx)
        candidates: list[tuple[str, ServiceRules]] = []
        if fw.iptables is not None:
            candidates.append((fw.tool or "iptables", service_rules(fw.iptables, address, port)))
        if fw.legacy is not None:
            candidates.append(("iptables-legacy", service_rules(fw.legacy, address, port)))
        if fw.nft is not None:
            candidates.append(("nftables", kube_proxy_service(fw.nft, address, port)))
        if not candidates:
            problems = "; ".join(fw.problems) or "no iptables-save or nft on the gateway"
            return failed(f"cannot read the gateway's NAT rules: {problems}", address=where)
        # The first table that knows the Service decides; "none" only if none of them do.
        mode, rules = next(((m, r) for m, r in candidates if r.kind != "none"), candidates[0])
        return self._at(judge(rules, None, address, port, mode, svc), where)

    @staticmethod
    def _at(finding: Finding, where: str) -> Finding:
        return Finding(
            finding.status,
            finding.summary,
            finding.evidence,
            finding.remediation,
            address=where,
            facts=finding.facts,
        )


def _read_ipvs(ctx: RunContext) -> IpvsTable | None:
    from k8sreach.parsers.errors import ParseError
    from k8sreach.parsers.ipvs import parse_ipvsadm

    # ipvsadm loads the ip_vs module when it is missing: a change to the gateway. Only ask it
    # when the kernel already has IPVS (then /proc/net/ip_vs exists).
    if _gateway.read(ctx, "/proc/net/ip_vs") is None:
        return None
    result = _gateway.run(ctx, ["ipvsadm", "-Ln"])
    if result.returncode != 0:
        return None
    try:
        return parse_ipvsadm(result.text)
    except ParseError:
        return None
