"""The `gateway-forwarding` check."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from checks import _gateway
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.parsers.sysctl import (
    SYSCTL_CONF,
    SYSCTL_DIRS,
    effective_setting,
    rp_filter_effective,
    rp_filter_meaning,
)
from k8sreach.result import Finding, Hop, Status

if TYPE_CHECKING:  # the firewall parsers load when the gateway is read
    from k8sreach.parsers.iptables import ForwardAccept, Ruleset
    from k8sreach.parsers.nft import NftRuleset

KEY = "net.ipv4.ip_forward"
PERSIST_FILE = "/etc/sysctl.d/99-ip-forward.conf"
_IFACE = re.compile(r"^[A-Za-z0-9_.@:-]{1,15}$")


@dataclass
class Forwarding:
    """Everything read from the gateway about forwarding, before judging it."""

    live: str | None
    persisted: Any  # SysctlSetting
    iptables_policy: str | None
    iptables_accepts: list[ForwardAccept]
    nft_drops: list[str]  # native nftables forward chains that drop by policy
    rp_filter: dict[str, dict[str, Any]]  # interface -> {all, iface, effective}
    cidrs: list[str]
    tool: str
    policy_line: str | None = None
    notes: list[str] = field(default_factory=list)


def _accept_doc(a: ForwardAccept) -> dict[str, Any]:
    return {"rule": a.line, "chain": a.chain, "reason": a.reason}


_BRIDGES = re.compile(r"^(docker\d*|br-[0-9a-f]+|virbr\d+|podman\d+|cni-podman\d+|lxcbr\d+)$")


def _may_admit(accept: ForwardAccept, path_ifaces: list[str]) -> bool:
    """Could this conditional ACCEPT let a new connection of the path through?

    Not when it is tied to an interface the path does not use (Docker's own `-i docker0`
    rules), nor when it accepts only replies (RELATED,ESTABLISHED without NEW).
    """
    for cond in accept.conditions:
        words = cond.split()
        if len(words) == 2 and words[0] in ("-i", "-o", "--in-interface", "--out-interface"):
            iface = words[1].rstrip("+")
            if path_ifaces and iface not in path_ifaces:
                return False
            if not path_ifaces and _BRIDGES.match(words[1]):
                return False
        if words and words[0] in ("--ctstate", "--state") and len(words) == 2:
            if "NEW" not in words[1].split(","):
                return False
    return True


def judge(f: Forwarding) -> Finding:
    """Live 0 or a DROP policy with nothing accepting fail; persisted 0 and strict rp_filter
    warn."""
    outright = [a for a in f.iptables_accepts if a.reason in ("unconditional", "cidr")]
    conditional = [
        a
        for a in f.iptables_accepts
        if a.reason == "conditional" and _may_admit(a, list(f.rp_filter))
    ]
    persisted = f.persisted
    evidence: dict[str, Any] = {
        "ip_forward_live": f.live,
        "ip_forward_persisted": persisted.value,
        "persisted_in": f"{persisted.source_path}:{persisted.line_no}"
        if persisted.source_path
        else None,
        "persisted_settings": [
            {"file": p, "line": n, "value": v} for p, n, v in persisted.all_settings
        ],
        "forward_policy": f.iptables_policy,
        "forward_policy_line": f.policy_line,
        "forward_accepts": [_accept_doc(a) for a in f.iptables_accepts],
        "path_interfaces": list(f.rp_filter),
        "nft_forward_drops": f.nft_drops,
        "rp_filter": f.rp_filter,
        "cidrs": f.cidrs,
        "read_with": f.tool,
    }
    if f.notes:
        evidence["notes"] = f.notes
    fails: list[str] = []
    warns: list[str] = []
    fixes: list[str] = []

    if f.live == "0":
        fails.append("net.ipv4.ip_forward is 0: the gateway does not forward at all")
        fixes.append(f"sysctl -w {KEY}=1")
        fixes += _persist_fix(persisted)
    if f.iptables_policy == "DROP" and not outright:
        tail = (
            f"; only conditional rules accept ({len(conditional)})"
            if conditional
            else " and no rule accepts the cluster ranges"
        )
        message = f"the FORWARD chain's policy is DROP{tail}"
        (warns if conditional else fails).append(message)
        for cidr in f.cidrs:
            fixes.append(f"iptables -I FORWARD -d {cidr} -j ACCEPT")
            fixes.append(f"iptables -I FORWARD -s {cidr} -j ACCEPT")
        fixes.append(
            "(if Docker set the policy, as it does at every start, add these rules to the "
            "DOCKER-USER chain instead; keep them across reboots with `netfilter-persistent "
            "save`)"
        )
    for drop in f.nft_drops:
        fails.append(f"the nftables chain {drop} drops forwarded traffic by policy")
        fixes.append(
            f"add accept rules for {', '.join(f.cidrs)} to {drop}, or set its policy to accept"
        )

    if f.live == "1" and persisted.value != "1":
        if persisted.value is None:
            warns.append(
                "ip_forward is 1 now but no sysctl file sets it: it is 0 again after a reboot "
                "unless a service sets it"
            )
        else:
            warns.append(
                f"ip_forward is 1 now but {persisted.source_path} line {persisted.line_no} sets "
                f"it to {persisted.value}: forwarding stops at the next reboot or `sysctl "
                "--system`"
            )
        fixes += _persist_fix(persisted)

    strict = {iface: v for iface, v in f.rp_filter.items() if v["effective"] == 1}
    if strict:
        names = ", ".join(sorted(strict))
        warns.append(
            f"strict reverse-path filtering (rp_filter=1) on {names}: replies that come back on "
            "another interface than the route to their source are dropped (asymmetric routing)"
        )
        settings = " ".join(f"net.ipv4.conf.{i}.rp_filter=2" for i in ["all", *sorted(strict)])
        fixes.append(f"sysctl -w {settings}")
        fixes.append(
            f"(keep it: put {', '.join(settings.split())} in /etc/sysctl.d/99-rp-filter.conf, "
            "one per line)"
        )

    remediation = ("On the gateway:\n" + "\n".join(f"  {x}" for x in fixes)) if fixes else None
    if fails:
        status, summary = (
            Status.FAIL,
            fails[0] + (f" (and {len(fails) - 1} more)" if len(fails) > 1 else ""),
        )
    elif warns:
        status, summary = (
            Status.WARN,
            warns[0] + (f" (and {len(warns) - 1} more)" if len(warns) > 1 else ""),
        )
    else:
        how = (
            f"FORWARD policy {f.iptables_policy}"
            if f.iptables_policy != "DROP"
            else f"FORWARD accepts {', '.join(f.cidrs)}"
        )
        status, summary = Status.PASS, f"ip_forward=1 (persisted in {persisted.source_path}), {how}"
    evidence["problems"] = fails + warns
    return Finding(status, summary, evidence, remediation)


def _persist_fix(persisted: Any) -> list[str]:
    if persisted.value is not None and persisted.value != "1":
        return [
            f"edit {persisted.source_path} line {persisted.line_no} to read `{KEY} = 1`, then "
            "`sysctl --system`"
        ]
    return [f"echo '{KEY} = 1' > {PERSIST_FILE}   (keeps it across reboots)"]


def _nft_native_drops(nft: NftRuleset | None, has_iptables: bool, cidrs: list[str]) -> list[str]:
    """Forward-hook chains of native nftables tables that drop by policy and accept nothing
    for the cluster ranges (iptables-nft's own `ip filter` table is judged through iptables)."""
    if nft is None:
        return []
    from k8sreach.parsers.nft import forward_chains

    drops = []
    for chain in forward_chains(nft):
        if has_iptables and chain.family in ("ip", "ip6") and chain.table == "filter":
            continue
        if chain.policy != "drop":
            continue
        accepting = any(
            "accept" in rule.text
            and (any(c in rule.text for c in cidrs) or " " not in rule.text.strip())
            for rule in chain.rules
        )
        if not accepting:
            drops.append(f"{chain.family} {chain.table} {chain.name}")
    return drops


def _policy_line(ruleset: Ruleset | None) -> str | None:
    chain = ruleset.chain("filter", "FORWARD") if ruleset else None
    return f":FORWARD {chain.policy}" if chain and chain.policy else None


def _local_source_for(gateway: str) -> str | None:
    """This client's address toward the gateway (a UDP connect sends nothing)."""
    try:
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((gateway, 9))
            return str(s.getsockname()[0])
    except OSError:
        return None


class GatewayForwarding(Check):
    """Reads the gateway's forwarding: live and persisted net.ipv4.ip_forward (sysctl files
    in boot order), the FORWARD chain's policy and what accepts the cluster ranges
    (iptables or nftables), and effective rp_filter on the path's interfaces."""

    id = "gateway-forwarding"
    hop = Hop.GATEWAY
    order = 100
    needs = (facts.GATEWAY,)
    wants = (facts.ADDRESS,)

    def run(self, ctx: RunContext) -> Finding:
        from k8sreach.parsers.iptables import forward_accept_rules, forward_policy

        live_raw, fw, persisted, rp_filter = _gateway.parallel(
            lambda: _gateway.read(ctx, "/proc/sys/net/ipv4/ip_forward"),
            lambda: _gateway.firewall(ctx),
            lambda: _persisted(ctx),
            lambda: _rp_filter(ctx),
        )
        live = live_raw.decode(errors="replace").strip() if live_raw is not None else None
        cidrs = [str(n) for n in (*ctx.settings.pod_cidr, *ctx.settings.service_cidr)]
        notes = list(fw.problems)
        if not cidrs:
            cidrs = ["0.0.0.0/0"]
            notes.append("no --pod-cidr/--service-cidr given: judged for all destinations")
        accepts = forward_accept_rules(fw.iptables, cidrs) if fw.iptables else []
        policy = forward_policy(fw.iptables) if fw.iptables else None
        if fw.legacy is not None and forward_policy(fw.legacy) == "DROP":
            legacy_accepts = forward_accept_rules(fw.legacy, cidrs)
            if not any(a.reason in ("unconditional", "cidr") for a in legacy_accepts):
                policy, accepts = "DROP", legacy_accepts
                notes.append("the legacy iptables FORWARD chain drops too")
        found = Forwarding(
            live=live,
            persisted=persisted,
            iptables_policy=policy,
            iptables_accepts=accepts,
            nft_drops=_nft_native_drops(fw.nft, fw.iptables is not None, cidrs),
            rp_filter=rp_filter,
            cidrs=cidrs,
            tool=fw.tool,
            policy_line=_policy_line(fw.iptables),
            notes=notes,
        )
        finding = judge(found)
        return Finding(
            finding.status,
            finding.summary,
            finding.evidence,
            finding.remediation,
            address=_gateway.label(ctx),
        )


def _persisted(ctx: RunContext) -> Any:
    listed = _gateway.run(ctx, ["find", *SYSCTL_DIRS, "-maxdepth", "1", "-name", "*.conf"])
    files = sorted(line for line in listed.text.splitlines() if line.endswith(".conf"))
    shown = _gateway.run(ctx, ["grep", "-H", "-n", "-e", "", "--", *files, SYSCTL_CONF])
    texts: dict[str, list[str]] = {path: [] for path in files}
    for line in shown.text.splitlines():
        path, _, rest = line.partition(":")
        _num, _, content = rest.partition(":")
        texts.setdefault(path, []).append(content)
    return effective_setting([(p, "\n".join(lines)) for p, lines in texts.items()], KEY)


def _rp_filter(ctx: RunContext) -> dict[str, dict[str, Any]]:
    """Effective rp_filter on the interfaces toward the client and toward the pods."""
    targets: list[str] = []
    gateway = ctx.settings.gateway
    if gateway:
        source = _local_source_for(gateway)
        if source:
            targets.append(source)
    endpoints = [str(e).rsplit(":", 1)[0].strip("[]") for e in ctx.fact(facts.ENDPOINTS) or ()]
    pods = [str(n.network_address + 1) for n in ctx.settings.pod_cidr]
    toward_pods = next((t for t in [*endpoints, ctx.fact(facts.ADDRESS), *pods] if t), None)
    if toward_pods:
        targets.append(toward_pods)
    ifaces: list[str] = []
    valid = []
    for t in targets:
        try:
            valid.append(str(ipaddress.ip_address(t)))
        except ValueError:
            continue
    if valid:
        batch = "".join(f"route get {t}\n" for t in valid).encode()
        routed = _gateway.run(ctx, ["ip", "-o", "-batch", "-"], input=batch)
        for line in routed.text.splitlines():
            m = re.search(r"\bdev (\S+)", line)
            if m and _IFACE.match(m.group(1)) and m.group(1) not in ifaces:
                ifaces.append(m.group(1))
    paths = [f"/proc/sys/net/ipv4/conf/{i}/rp_filter" for i in ["all", *ifaces]]
    shown = _gateway.run(ctx, ["grep", "-H", "-e", "", "--", *paths])
    values: dict[str, int] = {}
    for line in shown.text.splitlines():
        path, _, value = line.rpartition(":")
        name = path.split("/")[-2] if path.count("/") >= 2 else path
        if value.strip().isdigit():
            values[name] = int(value.strip())
    all_value = values.get("all", 0)
    return {
        i: {
            "all": all_value,
            "iface": values.get(i, 0),
            "effective": rp_filter_effective(all_value, values.get(i, 0)),
            "meaning": rp_filter_meaning(rp_filter_effective(all_value, values.get(i, 0))),
        }
        for i in ifaces
    }
