"""Reads of the gateway that several checks share, each done once per run (ctx.memo)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8sreach.context import RunContext, Unavailable

if TYPE_CHECKING:  # the parsers and the SSH layer load only when a gateway is read
    from k8sreach.parsers.iptables import Ruleset
    from k8sreach.parsers.nft import NftRuleset
    from k8sreach.remote import CommandResult, Host

LOG = logging.getLogger(__name__)

# Where BIRD's control socket usually is: Calico's calico-node, then Debian's bird2, then
# older layouts.
BIRD_SOCKETS = (
    "/var/run/calico/bird.ctl",
    "/run/bird/bird.ctl",
    "/var/run/bird/bird.ctl",
    "/run/bird.ctl",
    "/var/run/bird.ctl",
)


def missing_program(result: CommandResult) -> bool:
    """True when the command's program is not installed on the host."""
    err = result.err_text.lower()
    return result.returncode == 127 or (
        result.returncode not in (0, None)
        and ("command not found" in err or "no such file or directory" in err and not result.stdout)
    )


def run(ctx: RunContext, argv: list[str], input: bytes | None = None) -> CommandResult:
    """Run one read-only command on the gateway; lost access becomes a skip."""
    from k8sreach.remote import AccessError

    host: Host = ctx.gateway()
    try:
        return host.run(argv, ctx.probe_timeout(), input=input)
    except AccessError as exc:
        raise Unavailable(f"lost the connection to the gateway: {exc}") from None


def read(ctx: RunContext, path: str) -> bytes | None:
    from k8sreach.remote import AccessError

    try:
        return ctx.gateway().read_file(path, ctx.probe_timeout())
    except AccessError as exc:
        raise Unavailable(f"cannot read {path} on the gateway: {exc}") from None


def label(ctx: RunContext) -> str:
    """The gateway's name for the ADDRESS column: --gateway, else the ssh destination."""
    if ctx.settings.gateway:
        return ctx.settings.gateway
    if ctx.settings.on_gateway:
        return "local"
    return (ctx.settings.ssh or "gateway").rpartition("@")[2]


@dataclass(frozen=True)
class Firewall:
    """The gateway's packet filter as its tools show it."""

    iptables: Ruleset | None  # iptables-save (nft backend on current systems)
    legacy: Ruleset | None  # iptables-legacy-save, when legacy tables hold rules too
    nft: NftRuleset | None  # nft -j list ruleset: native nftables tables
    tool: str  # what was read, for evidence: "iptables-nft-save v1.8.9 (nf_tables)"
    problems: tuple[str, ...] = ()


def firewall(ctx: RunContext) -> Firewall:
    """Read iptables (nft and legacy backends) and nftables once per run."""
    return ctx.memo("gateway-firewall", lambda: _read_firewall(ctx))


def _read_firewall(ctx: RunContext) -> Firewall:
    from k8sreach.parsers.errors import ParseError
    from k8sreach.parsers.iptables import parse_iptables_save
    from k8sreach.parsers.nft import parse_nft_json

    problems: list[str] = []
    ipt = legacy = None
    nft = None
    tool = ""
    saved, listed = parallel(
        lambda: run(ctx, ["iptables-save"]),
        lambda: run(ctx, ["nft", "-j", "list", "ruleset"]),
    )
    if missing_program(saved):
        problems.append("iptables-save is not installed")
    elif saved.returncode != 0:
        problems.append(f"iptables-save failed: {saved.err_text.strip()[:200]}")
    else:
        try:
            ipt = parse_iptables_save(saved.text)
            tool = ipt.generated_by or "iptables-save"
        except ParseError as exc:
            problems.append(f"iptables-save output not understood: {exc}")
    if ipt is not None and any("legacy" in w for w in ipt.warnings):
        old = run(ctx, ["iptables-legacy-save"])
        if old.returncode == 0:
            try:
                legacy = parse_iptables_save(old.text)
            except ParseError as exc:
                problems.append(f"iptables-legacy-save output not understood: {exc}")
    if listed.returncode == 0 and listed.stdout.strip():
        try:
            nft = parse_nft_json(listed.text)
            tool = tool or "nft"
        except ParseError as exc:
            problems.append(f"nft -j list ruleset output not understood: {exc}")
    elif not missing_program(listed) and listed.returncode not in (0, None):
        LOG.debug("nft list ruleset failed: %s", listed.err_text.strip())
    return Firewall(ipt, legacy, nft, tool, tuple(problems))


def parallel(*calls: Any) -> list[Any]:
    """Run independent reads at once over the shared connection; results in call order.

    Each round trip to the gateway costs a few milliseconds on a LAN and much more behind a
    jump host or a slow login shell; independent reads should not wait for each other.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(calls), 6)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]
