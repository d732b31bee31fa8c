"""The `dns-search` check."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checks._dns import ask_all, dns_server, failure_text, transport_evidence
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.dnsprobe import DnsOutcome
from k8sreach.result import Finding, Hop, failed, passed, warned
from k8sreach.target import Target

LOG = logging.getLogger(__name__)

RESOLV_CONF = "/etc/resolv.conf"
# glibc caps ndots at 15 (RES_MAXNDOTS) and, before 2.26, the search list at 6 domains; we ask
# at most this many search domains so that one check's queries stay few.
_MAX_NDOTS = 15
_MAX_SEARCH = 12
# A search-loop answer after which glibc tries the next domain; anything else ends the loop.
_NEXT = frozenset({"NXDOMAIN", "SERVFAIL"})


@dataclass(frozen=True)
class SearchConfig:
    """How the client's resolver expands a name: search domains, ndots and where they came
    from (`lines`: the configuration lines that set them, as evidence)."""

    search: tuple[str, ...]
    ndots: int = 1
    source: str = RESOLV_CONF
    lines: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """One name the resolver tries: absolute, with the search domain it came from (None when
    it is the name as given)."""

    name: str
    suffix: str | None


@dataclass(frozen=True)
class Resolution:
    """Which candidate the resolver ends with: `winner` (an index) answered with addresses;
    `stopped` is the index whose failure ended the search loop; `steps` says per candidate
    what the resolver did with it (answered, next, stopped, ignored, not tried, aborted)."""

    winner: int | None
    stopped: int | None
    steps: tuple[str, ...]


def _domain(text: str) -> str:
    return text.strip().rstrip(".").lower()


def parse_resolv_conf(
    text: str,
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
    source: str = RESOLV_CONF,
) -> SearchConfig:
    """Return the search list and ndots glibc takes from resolv.conf text, LOCALDOMAIN and
    RES_OPTIONS; without search or domain lines, the domain of the host's name."""
    env = env or {}
    search: list[str] | None = None
    ndots = 1
    lines: list[str] = []
    nameservers: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        keyword, *values = line.split()
        comment = next((i for i, v in enumerate(values) if v[0] in "#;"), len(values))
        values = values[:comment]
        if keyword in ("search", "domain") and values:
            # domain and search exclude each other: the last of them wins
            search = [_domain(v) for v in (values if keyword == "search" else values[:1])]
            lines = [x for x in lines if not x.startswith(("search", "domain"))] + [line]
        elif keyword == "options":
            for opt in values:
                ndots = _ndots(opt, ndots)
            if any(v.startswith("ndots:") for v in values):
                lines.append(line)
        elif keyword == "nameserver" and values:
            nameservers.append(values[0])
    if env.get("LOCALDOMAIN"):
        search = [_domain(v) for v in env["LOCALDOMAIN"].split()]
        lines.append(f"LOCALDOMAIN={env['LOCALDOMAIN']}")
    if env.get("RES_OPTIONS"):
        for opt in env["RES_OPTIONS"].split():
            ndots = _ndots(opt, ndots)
        lines.append(f"RES_OPTIONS={env['RES_OPTIONS']}")
    if search is None and hostname and "." in hostname.strip("."):
        search = [_domain(hostname.strip(".").split(".", 1)[1])]
        lines.append(f"hostname {hostname} (no search or domain line)")
    domains = tuple(dict.fromkeys(d for d in (search or []) if d))
    return SearchConfig(domains, ndots, source, tuple(lines), tuple(nameservers))


def _ndots(option: str, current: int) -> int:
    if not option.startswith("ndots:"):
        return current
    value = option.split(":", 1)[1]
    return min(int(value), _MAX_NDOTS) if value.isdigit() else current


def candidates(short: str, config: SearchConfig) -> list[Candidate]:
    """Return the names the resolver tries for `short`, in its order: the name as is first
    when it has at least ndots dots, else the search domains first and the name last."""
    name = short.rstrip(".")
    as_is = Candidate(f"{name}.", None)
    searched = [Candidate(f"{name}.{d}.", d) for d in config.search[:_MAX_SEARCH]]
    if name.count(".") >= config.ndots:
        return [as_is, *searched]
    return [*searched, as_is]


def resolve_order(names: Sequence[Candidate], outcomes: Sequence[DnsOutcome]) -> Resolution:
    """Return where the resolver ends, given every candidate's outcome, by glibc's rules.

    The name as is, tried first, may fail any way and the search goes on. In the search loop
    NXDOMAIN, NODATA and SERVFAIL go on to the next domain; any other failure (REFUSED, a
    timeout) ends the loop, and the name as is is still tried when it comes last. A refused
    connection (nothing listening) ends the whole lookup.
    """
    steps = ["not tried"] * len(names)
    stopped: int | None = None
    for i, (cand, out) in enumerate(zip(names, outcomes, strict=True)):
        if stopped is not None and cand.suffix is not None:
            continue
        if out.kind == "answer" and out.rcode == "NOERROR" and out.addresses:
            steps[i] = "answered"
            return Resolution(i, stopped, tuple(steps))
        if out.kind == "port-unreachable":
            steps[i] = "aborted"
            return Resolution(None, i, tuple(steps))
        if cand.suffix is None:
            steps[i] = "next" if i == 0 else "failed"
        elif out.kind == "answer" and (out.rcode in _NEXT or out.rcode == "NOERROR"):
            steps[i] = "next"
        else:
            steps[i] = "stopped"
            stopped = i
    return Resolution(None, stopped, tuple(steps))


def _how(names: Sequence[Candidate], index: int) -> str:
    cand = names[index]
    where = f"try {index + 1} of {len(names)}"
    if cand.suffix is None:
        return f"the name as is, {where}"
    return f"search domain {cand.suffix}, {where}"


def remediation(
    os_name: str,
    config: SearchConfig,
    cluster_domain: str,
    short: str,
    interface: str | None = None,
) -> str:
    """Return the commands that put svc.<cluster domain> first in this OS's search list."""
    wanted = f"svc.{cluster_domain}"
    domains = [wanted, *(d for d in config.search if d != wanted)]
    listed = " ".join(domains)
    if os_name == "win32":
        quoted = ", ".join(f'"{d}"' for d in domains)
        return (
            f"Windows: in PowerShell as Administrator, `Set-DnsClientGlobalSetting "
            f"-SuffixSearchList @({quoted})` (it persists), then `Clear-DnsClientCache`; "
            f"check with `Resolve-DnsName {short}`."
        )
    if os_name == "darwin":
        return (
            f'macOS: `sudo networksetup -setsearchdomains "<service>" {listed}`, with the '
            "network service the cluster is reached through (`networksetup "
            "-listallnetworkservices`, e.g. Wi-Fi); it persists. Check with `scutil --dns` "
            f"and `dscacheutil -q host -a name {short}`."
        )
    iface = interface or "<interface>"
    resolved = "127.0.0.53" in config.nameservers
    with_resolved = (
        f"Linux (systemd-resolved manages {config.source}): `sudo resolvectl domain {iface} "
        f"{listed}`; to persist it, set `Domains={listed}` in the interface's "
        "systemd-networkd file or `nmcli connection modify <connection> ipv4.dns-search "
        f'"{",".join(domains)}"` for NetworkManager.'
    )
    plain = (
        f"Linux: put `search {listed}` in {config.source} (when DHCP, NetworkManager or "
        "resolvconf writes that file, set the search list there instead, e.g. `nmcli "
        f'connection modify <connection> ipv4.dns-search "{",".join(domains)}"`).'
    )
    if resolved:
        return f"{with_resolved} Check with `getent hosts {short}`."
    return (
        f"{plain} With systemd-resolved: `sudo resolvectl domain {iface} {listed}`. Check "
        f"with `getent hosts {short}`."
    )


def judge(
    target: Target,
    config: SearchConfig,
    names: Sequence[Candidate],
    outcomes: Sequence[DnsOutcome],
    fqdn: DnsOutcome,
    server: str,
    os_name: str = sys.platform,
    interface: str | None = None,
) -> Finding:
    """Compare the short name, expanded as the client's resolver would, with the FQDN."""
    short = target.short_name
    res = resolve_order(names, outcomes)
    evidence: dict[str, Any] = {
        "short_name": short,
        "search": list(config.search),
        "ndots": config.ndots,
        "config_source": config.source,
        "config_lines": list(config.lines),
        "order": _order_text(short, config),
        "server": server,
        "candidates": [
            {"name": c.name, "suffix": c.suffix, "step": step, **transport_evidence(o)}
            for c, o, step in zip(names, outcomes, res.steps, strict=True)
        ],
        "answered_by": names[res.winner].name if res.winner is not None else None,
        "fqdn": {"name": fqdn.qname, **transport_evidence(fqdn)},
    }
    kw: dict[str, Any] = {"evidence": evidence, "address": server}
    if not (fqdn.kind == "answer" and fqdn.rcode == "NOERROR" and fqdn.addresses):
        return failed(
            f"the FQDN {fqdn.qname} does not resolve either ({failure_text(fqdn)}): not a "
            "search-domain problem",
            **kw,
        )
    wanted = set(fqdn.addresses)
    fix = remediation(os_name, config, target.cluster_domain, short, interface)
    if res.winner is not None:
        got = outcomes[res.winner]
        answers = ", ".join(got.addresses)
        how = _how(names, res.winner)
        if set(got.addresses) == wanted:
            return passed(
                f"{short} -> {answers} as {names[res.winner].name} ({how}), as the FQDN", **kw
            )
        return warned(
            f"{short} -> {answers} as {names[res.winner].name} ({how}), not the FQDN's "
            f"{', '.join(fqdn.addresses)}: a search-domain problem on this client, not a DNS "
            "outage",
            remediation=(
                f"This client's resolver finds {names[res.winner].name} before the cluster's "
                f"name, so programs using the short name {short} reach the wrong address. "
                f"Put svc.{target.cluster_domain} first in the search list. {fix}"
            ),
            **kw,
        )
    listed = ", ".join(config.search) or "none"
    summary = (
        f"{short} does not resolve with this client's search list ({listed}; ndots "
        f"{config.ndots}) while the FQDN does: a search-domain problem on this client, not a "
        "DNS outage"
    )
    why = ""
    if res.stopped is not None:
        stop = names[res.stopped]
        summary += f"; the lookup stops at {stop.name} ({failure_text(outcomes[res.stopped])})"
        skipped = [
            c.suffix
            for c, step in zip(names, res.steps, strict=True)
            if c.suffix and step == "not tried"
        ]
        if skipped:
            why = (
                f" The resolver gives up at {stop.name}: after a REFUSED, a timeout or nothing "
                f"listening it tries no further search domain, so {', '.join(skipped)} "
                f"{'is' if len(skipped) == 1 else 'are'} never asked."
            )
    return warned(
        summary,
        remediation=(
            f"Programs on this client that use the short name {short} fail, though DNS works: "
            f"{fqdn.qname} resolves.{why} Add svc.{target.cluster_domain} to the search list, "
            f"first. {fix}"
        ),
        **kw,
    )


def _order_text(short: str, config: SearchConfig) -> str:
    dots = short.count(".")
    plural = "dot" if dots == 1 else "dots"
    if dots >= config.ndots:
        return (
            f"the name as is first ({dots} {plural} >= ndots {config.ndots}), then the search list"
        )
    return f"the search list first ({dots} {plural} < ndots {config.ndots}), then the name as is"


def read_config(platform: str = sys.platform) -> SearchConfig:
    """Return this client's search configuration: resolv.conf, or dnspython's view on Windows."""
    if platform == "win32":
        return _windows_config()
    try:
        with open(RESOLV_CONF, encoding="utf-8", errors="replace") as conf:
            text = conf.read()
    except OSError as exc:
        raise Unavailable(f"cannot read {RESOLV_CONF}: {exc.strerror}") from None
    env = os.environ if platform.startswith("linux") else {}
    return parse_resolv_conf(text, env, socket.gethostname())


def _windows_config() -> SearchConfig:
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=True)
    except (dns.resolver.NoResolverConfiguration, OSError) as exc:
        raise Unavailable(f"cannot read the DNS client's settings: {exc}") from None
    search = [n.to_text(omit_final_dot=True) for n in resolver.search]
    if not search and resolver.domain is not None and resolver.domain.labels != (b"",):
        search = [resolver.domain.to_text(omit_final_dot=True)]
    # dnspython models the DNS Client like glibc (name as is first when dotted enough, then
    # the suffixes); the DNS Client's devolution of the primary suffix is not modelled.
    return SearchConfig(
        tuple(_domain(d) for d in search),
        resolver.ndots if resolver.ndots is not None else 1,
        "Windows DNS Client (via dnspython)",
        tuple(f"suffix {d}" for d in search),
    )


def _interface_to(server: str) -> str | None:
    """Return the interface the route to `server` leaves by (Linux), for resolvectl."""
    if not sys.platform.startswith("linux"):
        return None
    from k8sreach import routes

    try:
        ipaddress.ip_address(server)
        found = routes.lookup(routes.read_linux_routes(), server)
    except (ValueError, routes.RouteReadError):
        return None
    return found.interface if found else None


class DnsSearch(Check):
    """Expands the short name svc.ns the way this client's resolver would (search list,
    ndots) and asks each candidate: a short name that fails or resolves elsewhere while the
    FQDN works is a search-domain problem on the client, not a DNS outage; evidence: the
    search list and its source lines, each candidate's answer, which one answered."""

    id = "dns-search"
    hop = Hop.DNS
    order = 150
    explained_by = ("dns-resolves",)

    def run(self, ctx: RunContext) -> Finding:
        target = ctx.target
        if target.kind != "service":
            raise Unavailable("an Ingress run has no Service short name to expand")
        server = dns_server(ctx.settings)
        if server is None:
            raise Unavailable("no DNS server configured", caused_by="dns-resolves")
        config = read_config()
        names = candidates(target.short_name, config)
        questions = [("udp", c.name, "A") for c in names]
        fqdn_at = next((i for i, c in enumerate(names) if c.name == target.fqdn), None)
        if fqdn_at is None:
            questions.append(("udp", target.fqdn, "A"))
        outcomes = ask_all(questions, server.host, server.port, ctx.probe_timeout())
        fqdn = outcomes[fqdn_at if fqdn_at is not None else -1]
        return judge(
            target,
            config,
            names,
            outcomes[: len(names)],
            fqdn,
            str(server),
            interface=_interface_to(server.host),
        )
