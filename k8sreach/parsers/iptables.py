"""Parser for `iptables-save` / `ip6tables-save` (also `iptables -S`) and lookups on it.

`service_rules` follows kube-proxy's iptables mode: nat `KUBE-SERVICES` rule for the
ClusterIP and port -> `KUBE-SVC-*` / `KUBE-SVL-*` / `KUBE-EXT-*` (and the older
`KUBE-FW-*` / `KUBE-XLB-*`) chains -> `KUBE-SEP-*` chains -> `DNAT --to-destination`;
or a filter `KUBE-SERVICES` / `KUBE-EXTERNAL-SERVICES` REJECT ("... has no endpoints").

`forward_accepts` says which filter FORWARD rules accept traffic to or from given CIDRs,
following jumps into user chains; see `forward_accept_rules` for what counts.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from dataclasses import dataclass, field
from functools import cached_property

from k8sreach.parsers.errors import ParseError

LOG = logging.getLogger(__name__)

MAX_JUMP_DEPTH = 8  # chains nested deeper than this are not followed (loops, huge rulesets)

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s+")
_CHAIN_LINE = re.compile(r"^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$")
_MARK_CHAINS = frozenset({"KUBE-MARK-MASQ", "KUBE-MARK-DROP"})
_TERMINAL_DROP = frozenset({"DROP", "REJECT"})


@dataclass(frozen=True)
class Option:
    """One option of a rule with its values, e.g. `! -s 10.244.0.0/16`."""

    name: str  # as written: "-s", "--dport", "-m", "--comment", "-j", ...
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Rule:
    """One `-A CHAIN ...` line."""

    table: str
    chain: str
    argv: tuple[str, ...]  # tokens after "-A CHAIN", shell-unquoted
    line: str  # the line as printed (with a "[p:b]" counter prefix when present)
    line_no: int
    packets: int | None = None  # from `iptables-save -c`
    bytes: int | None = None

    @cached_property
    def options(self) -> tuple[Option, ...]:
        """Return the rule's options in order."""
        return _options(self.argv)

    @property
    def target(self) -> str | None:
        """Return the -j/-g target (ACCEPT, DNAT, a user chain, ...), None if none."""
        for option in self.options:
            if option.name in ("-j", "--jump", "-g", "--goto") and option.values:
                return option.values[0]
        return None

    @property
    def goto(self) -> bool:
        """Return whether the target is reached with -g (no return to this chain)."""
        return any(o.name in ("-g", "--goto") for o in self.options)

    @property
    def comment(self) -> str:
        """Return the `-m comment --comment` text(s) joined with "; ", "" if none."""
        return "; ".join(o.values[0] for o in self.options if o.name == "--comment" and o.values)

    def values(self, *names: str) -> list[tuple[tuple[str, ...], bool]]:
        """Return (values, negated) of every option named one of names."""
        return [(o.values, o.negated) for o in self.options if o.name in names]


@dataclass(frozen=True)
class Chain:
    """A chain with its policy (None for user chains) and rules."""

    name: str
    policy: str | None
    packets: int | None
    bytes: int | None
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Table:
    """One `*table` section."""

    name: str
    chains: dict[str, Chain] = field(default_factory=dict)


@dataclass(frozen=True)
class Ruleset:
    """A parsed `iptables-save` output."""

    tables: dict[str, Table] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # e.g. "# Warning: iptables-legacy tables present, ..."
    generated_by: str = ""  # "iptables-nft-save v1.8.9 (nf_tables)" from the header comment

    def chain(self, table: str, name: str) -> Chain | None:
        """Return the chain, None if the table or chain is missing."""
        found = self.tables.get(table)
        return found.chains.get(name) if found else None


@dataclass(frozen=True)
class ServiceRules:
    """What the ruleset does with traffic to a ClusterIP (or external IP) and port."""

    kind: str  # "dnat" (endpoints), "reject" (no endpoints), "drop", or "none" (no rule)
    endpoints: tuple[str, ...]  # "10.244.1.10:3306" DNAT destinations, rule order, no repeats
    evidence: tuple[str, ...]  # the matching rule lines, in the order they were followed
    service: str | None = None  # "default/mysql-read:mysql" from the kube-proxy comment
    chains: tuple[str, ...] = ()  # chains followed: KUBE-SVC-..., KUBE-SEP-...


@dataclass(frozen=True)
class ForwardAccept:
    """A rule reached from FORWARD whose target is ACCEPT, with what it depends on."""

    line: str
    chain: str  # chain holding the ACCEPT rule
    path: tuple[str, ...]  # FORWARD, then every chain jumped into to reach it
    reason: str  # "unconditional", "cidr", or "conditional"
    conditions: tuple[str, ...]  # matches (from the rule and the jumps) it depends on


def _options(argv: tuple[str, ...]) -> tuple[Option, ...]:
    """Split rule tokens into options; `!` before an option (or its value) negates it."""
    options: list[Option] = []
    name: str | None = None
    values: list[str] = []
    negated = False
    pending_negation = False
    for index, token in enumerate(argv):
        if token == "!":
            following = argv[index + 1] if index + 1 < len(argv) else ""
            if _is_option(following) or name is None:
                pending_negation = True  # `! -s 10.0.0.0/8`, as iptables-save prints it
            else:
                negated = True  # old syntax: `-s ! 10.0.0.0/8`
            continue
        if _is_option(token):
            if name is not None:
                options.append(Option(name, tuple(values), negated))
            name, values, negated, pending_negation = token, [], pending_negation, False
            continue
        values.append(token)
    if name is not None:
        options.append(Option(name, tuple(values), negated))
    return tuple(options)


def _is_option(token: str) -> bool:
    """Return whether token is an option name (not a value such as -1)."""
    return token.startswith("-") and len(token) > 1 and not _is_number(token)


def _is_number(token: str) -> bool:
    """Return whether token is a negative number (a value, not an option)."""
    return bool(re.match(r"^-\d+$", token))


def parse_iptables_save(text: str, default_table: str = "filter") -> Ruleset:
    """Return the tables, chains and rules of `iptables-save` (or `iptables -S`) output."""
    tables: dict[str, dict[str, dict]] = {}
    order: dict[str, list[str]] = {}
    warnings: list[str] = []
    generated_by = ""
    current: str | None = None
    seen_content = False

    def chain_entry(table: str, name: str) -> dict:
        chains = tables.setdefault(table, {})
        order.setdefault(table, [])
        if name not in chains:
            chains[name] = {"policy": None, "packets": None, "bytes": None, "rules": []}
            order[table].append(name)
        return chains[name]

    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if "Warning" in line:
                warnings.append(line)
            match = re.match(r"^# Generated by (.+?) on ", line)
            if match and not generated_by:
                generated_by = match.group(1)
            continue
        seen_content = True
        if line.startswith("*"):
            current = line[1:].strip()
            tables.setdefault(current, {})
            order.setdefault(current, [])
            continue
        if line == "COMMIT":
            current = None
            continue
        table = current or default_table
        if line.startswith(":"):
            match = _CHAIN_LINE.match(line)
            if not match:
                raise ParseError("malformed iptables-save chain line", line_no, raw)
            entry = chain_entry(table, match.group(1))
            entry["policy"] = None if match.group(2) == "-" else match.group(2)
            if match.group(3) is not None:
                entry["packets"], entry["bytes"] = int(match.group(3)), int(match.group(4))
            continue
        packets = bytes_ = None
        counters = _COUNTERS.match(line)
        body = line
        if counters:
            packets, bytes_ = int(counters.group(1)), int(counters.group(2))
            body = line[counters.end() :]
        try:
            tokens = shlex.split(body)
        except ValueError as error:
            raise ParseError(f"unbalanced quotes in iptables rule: {error}", line_no, raw) from None
        if len(tokens) >= 3 and tokens[0] in ("-P", "--policy"):
            chain_entry(table, tokens[1])["policy"] = tokens[2]  # `iptables -S` form
            continue
        if len(tokens) >= 2 and tokens[0] in ("-N", "--new-chain"):
            chain_entry(table, tokens[1])
            continue
        if len(tokens) >= 2 and tokens[0] in ("-A", "--append", "-I", "--insert"):
            rule = Rule(table, tokens[1], tuple(tokens[2:]), raw.strip(), line_no, packets, bytes_)
            chain_entry(table, tokens[1])["rules"].append(rule)
            continue
        raise ParseError("not an iptables-save line", line_no, raw)

    if not seen_content and text.strip() and not warnings:
        raise ParseError("no iptables tables in output")
    built: dict[str, Table] = {}
    for name, chains in tables.items():
        built[name] = Table(
            name,
            {
                chain: Chain(chain, e["policy"], e["packets"], e["bytes"], tuple(e["rules"]))
                for chain, e in ((c, chains[c]) for c in order[name])
            },
        )
    return Ruleset(built, tuple(warnings), generated_by)


def forward_policy(ruleset: Ruleset) -> str | None:
    """Return the filter FORWARD chain's policy ("ACCEPT"/"DROP"), None if not present."""
    chain = ruleset.chain("filter", "FORWARD")
    return chain.policy if chain else None


def _same_host(value: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Return whether an -s/-d value is exactly this address (`IP` or `IP/32`, `IP/128`)."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.num_addresses == 1 and network.network_address == ip


def _port_matches(rule: Rule, port: int) -> bool:
    """Return whether the rule's --dport / --dports includes port (and has one)."""
    for values, negated in rule.values("--dport", "--destination-port", "--dports"):
        if negated or not values:
            return False
        for part in values[0].split(","):
            low, _, high = part.partition(":")
            try:
                if int(low) <= port <= int(high or low):
                    return True
            except ValueError:
                continue
    return False


def _matches_service(rule: Rule, ip, port: int, protocol: str) -> bool:
    """Return whether the rule selects traffic to ip:port/protocol by its -d and --dport."""
    dests = rule.values("-d", "--destination")
    if not any(not neg and vals and _same_host(vals[0], ip) for vals, neg in dests):
        return False
    for values, negated in rule.values("-p", "--protocol"):
        if negated or not values or values[0].lower() != protocol:
            return False
    return _port_matches(rule, port)


def _service_name(rule: Rule) -> str | None:
    """Return "ns/name:port" from a kube-proxy comment, None if the rule has none."""
    for word in rule.comment.split():
        if "/" in word:
            return word
    return None


def _dnat_destination(rule: Rule) -> str | None:
    """Return the DNAT --to-destination of the rule, None if it is not a DNAT rule."""
    if rule.target != "DNAT":
        return None
    for values, _ in rule.values("--to-destination", "--to"):
        if values:
            return values[0]
    return None


def service_rules(
    ruleset: Ruleset, cluster_ip: str, port: int, protocol: str = "tcp"
) -> ServiceRules:
    """Return how kube-proxy's iptables rules treat traffic to cluster_ip:port/protocol."""
    ip = ipaddress.ip_address(cluster_ip)
    protocol = protocol.lower()
    evidence: list[str] = []
    endpoints: list[str] = []
    followed: list[str] = []
    service: str | None = None

    nat = ruleset.tables.get("nat")
    if nat is not None and "KUBE-SERVICES" in nat.chains:
        for rule in nat.chains["KUBE-SERVICES"].rules:
            target = rule.target
            if not _matches_service(rule, ip, port, protocol):
                continue
            if target is None or target in _MARK_CHAINS or target not in nat.chains:
                continue  # older kube-proxy put its KUBE-MARK-MASQ rule here too
            evidence.append(rule.line)
            service = service or _service_name(rule)
            _follow_service_chain(nat, target, evidence, endpoints, followed, 1)

    rejected: list[Rule] = []
    filter_table = ruleset.tables.get("filter")
    if filter_table:
        for chain_name in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"):
            chain = filter_table.chains.get(chain_name)
            if chain:
                rejected += [
                    r
                    for r in chain.rules
                    if r.target in _TERMINAL_DROP and _matches_service(r, ip, port, protocol)
                ]

    if endpoints:
        return ServiceRules("dnat", tuple(endpoints), tuple(evidence), service, tuple(followed))
    if rejected:
        kind = "reject" if any(r.target == "REJECT" for r in rejected) else "drop"
        lines = tuple(evidence + [r.line for r in rejected])
        return ServiceRules(kind, (), lines, service or _service_name(rejected[0]), tuple(followed))
    # A KUBE-SVC chain without KUBE-SEP jumps sends nothing anywhere: no usable rule.
    return ServiceRules("none", (), tuple(evidence), service, tuple(followed))


def _follow_service_chain(
    table: Table,
    name: str,
    evidence: list[str],
    endpoints: list[str],
    followed: list[str],
    depth: int,
) -> None:
    """Collect DNAT endpoints reachable from a kube-proxy service chain."""
    if name in followed or depth > MAX_JUMP_DEPTH:
        return
    followed.append(name)
    for rule in table.chains[name].rules:
        destination = _dnat_destination(rule)
        if destination:
            evidence.append(rule.line)
            if destination not in endpoints:
                endpoints.append(destination)
            continue
        target = rule.target
        if target and target not in _MARK_CHAINS and target in table.chains:
            if target not in followed:
                evidence.append(rule.line)
            _follow_service_chain(table, target, evidence, endpoints, followed, depth + 1)


_IGNORED_MATCHES = frozenset({"-m", "--match", "--comment", "-j", "--jump", "-g", "--goto"})
_ADDRESS = {
    "-s": "source",
    "--source": "source",
    "-d": "destination",
    "--destination": "destination",
}
_PORTS = frozenset(
    {
        "-p",
        "--protocol",
        "--dport",
        "--sport",
        "--dports",
        "--sports",
        "--destination-port",
        "--source-port",
    }
)
_STATE = frozenset({"--ctstate", "--state"})


def _render(option: Option) -> str:
    """Return an option as iptables would print it."""
    text = " ".join((option.name, *option.values))
    return f"! {text}" if option.negated else text


def _conditions(rule: Rule) -> list[Option]:
    """Return the rule's match options, without module loads, comments and the target."""
    result = []
    seen_target = False
    for option in rule.options:
        if option.name in ("-j", "--jump", "-g", "--goto"):
            seen_target = True
        if seen_target or option.name in _IGNORED_MATCHES:
            continue  # options after the target are the target's own (--reject-with, ...)
        result.append(option)
    return result


def _classify(conditions: list[Option], cidrs: list) -> str | None:
    """Return the ForwardAccept reason, None if an address match excludes the CIDRs."""
    has_address = False
    restricting = False
    for option in conditions:
        if option.name in _ADDRESS:
            has_address = True
            try:
                network = ipaddress.ip_network(option.values[0], strict=False)
            except (ValueError, IndexError):
                restricting = True
                continue
            same_family = [c for c in cidrs if c.version == network.version]
            if option.negated:
                applies = any(not c.subnet_of(network) for c in same_family)
            else:
                applies = any(c.overlaps(network) for c in same_family)
            if not applies:
                return None
        elif option.name in _PORTS:
            continue
        elif option.name in _STATE:
            states = {s.upper() for s in ",".join(option.values).split(",")}
            if option.negated or "NEW" not in states:
                restricting = True  # e.g. RELATED,ESTABLISHED: only replies pass
        else:
            restricting = True  # interfaces, marks, sets, addrtype, ...
    if restricting:
        return "conditional"
    if has_address:
        return "cidr"
    if any(option.name in _PORTS for option in conditions):
        return "conditional"  # port-only accepts cover one service, not the path
    return "unconditional"


def forward_accept_rules(ruleset: Ruleset, cidrs: list[str]) -> list[ForwardAccept]:
    """Return the ACCEPT rules reachable from filter FORWARD that could pass the CIDRs' traffic.

    Rules are walked in order, jumps into user chains followed (up to MAX_JUMP_DEPTH), and
    the walk stops at an unconditional ACCEPT, DROP or REJECT (nothing after it is
    reached) and leaves a chain at an unconditional RETURN. Each ACCEPT gets a reason:
    "unconditional" (nothing to match, e.g. `-A FORWARD -j ACCEPT` or a jump to an
    accept-all chain), "cidr" (only -s/-d that overlap the CIDRs, optionally protocol and
    ports), or "conditional" (also depends on interfaces, conntrack state without NEW,
    marks such as kube-proxy's 0x4000 or Calico's policy marks, sets, ...). Accepts whose
    -s/-d exclude every CIDR are left out.
    """
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    table = ruleset.tables.get("filter")
    if table is None or "FORWARD" not in table.chains:
        return []
    found: list[ForwardAccept] = []
    _walk(table, "FORWARD", [], ("FORWARD",), networks, found)
    return found


def _walk(
    table: Table,
    name: str,
    inherited: list[Option],
    path: tuple[str, ...],
    networks: list,
    found: list[ForwardAccept],
) -> bool:
    """Walk a chain; return True when an unconditional verdict ends the whole traversal."""
    for rule in table.chains[name].rules:
        own = _conditions(rule)
        conditions = inherited + own
        target = rule.target
        if target == "ACCEPT":
            reason = _classify(conditions, networks)
            if reason is not None:
                found.append(
                    ForwardAccept(
                        rule.line, name, path, reason, tuple(_render(o) for o in conditions)
                    )
                )
            if not own:
                return True
        elif target in _TERMINAL_DROP:
            if not own:
                return True
        elif target == "RETURN":
            if not own:
                return False
        elif target in table.chains and target not in path:
            if len(path) > MAX_JUMP_DEPTH:
                LOG.debug("not following %s: deeper than %d chains", target, MAX_JUMP_DEPTH)
                continue
            stop = _walk(table, target, conditions, (*path, target), networks, found)
            if not own and (stop or rule.goto):
                # With -g the rest of this chain is never reached either.
                return stop
    return False


def forward_accepts(ruleset: Ruleset, cidrs: list[str]) -> list[str]:
    """Return the FORWARD-reachable rule lines that accept traffic to/from cidrs outright.

    That is the "unconditional" and "cidr" rules of forward_accept_rules; conditional
    ones (interface, mark, established-only) are left out.
    """
    return [
        a.line
        for a in forward_accept_rules(ruleset, cidrs)
        if a.reason in ("unconditional", "cidr")
    ]
