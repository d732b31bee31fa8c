"""Parsers for `nft list ruleset` (text) and `nft -j list ruleset` (JSON), and lookups.

Both give the same NftRuleset: tables, base chains with their hook/priority/policy, rules,
and named sets/maps with their elements. Text rules keep the line as printed; JSON rules
keep the `expr` list and a best-effort text rendering.

Lookups: the forward-hook base chains and their policies (`forward_chains`,
`forward_policy`), and kube-proxy's nftables mode (`kube_proxy_service`): the
`service-ips` verdict map -> `service-*` chain -> `numgen ... vmap` -> `endpoint-*` chains
-> `dnat to IP:PORT`, or the `no-endpoint-services` map (reject/drop), or
`cluster-ips-check` (a ClusterIP without that port is rejected, an unallocated one dropped).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from k8sreach.parsers.errors import ParseError
from k8sreach.parsers.iptables import ServiceRules

LOG = logging.getLogger(__name__)

MAX_JUMP_DEPTH = 8

_TABLE = re.compile(r"^table\s+(ip|ip6|inet|arp|bridge|netdev)\s+(\S+)\s*\{$")
_CHAIN = re.compile(r"^chain\s+(\S+)\s*\{$")
_SET = re.compile(r"^(set|map)\s+(\S+)\s*\{$")
_ONE_LINE_BLOCK = re.compile(r"^((?:chain|set|map)\s+\S+)\s*\{(.*)\}\s*$")
_BASE = re.compile(
    r"type\s+(\S+)\s+hook\s+(\S+)(?:\s+device\s+\S+)?(?:\s+devices\s*=\s*\{[^}]*\})?"
    r"\s+priority\s+([^;]+);(?:\s*policy\s+(\w+);)?"
)
_COMMENT = re.compile(r'\bcomment\s+"((?:[^"\\]|\\.)*)"')
_FORWARD_FAMILIES = frozenset({"ip", "ip6", "inet"})
_NAMED_PRIORITIES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}


@dataclass(frozen=True)
class NftRule:
    """One rule; text as printed (text input) or rendered (JSON input)."""

    text: str
    comment: str = ""
    handle: int | None = None
    expr: Any = field(default=None, compare=False)  # the JSON expr list, None for text input


@dataclass(frozen=True)
class NftChain:
    """A chain; type/hook/priority/policy are None for a regular (non-base) chain."""

    family: str
    table: str
    name: str
    type: str | None
    hook: str | None
    priority: str | None  # as printed: "filter", "0", "dstnat", "-100"
    policy: str | None  # "accept"/"drop" for base chains
    rules: tuple[NftRule, ...] = ()

    @property
    def is_base(self) -> bool:
        """Return whether the chain is attached to a hook."""
        return self.hook is not None


@dataclass(frozen=True)
class NftElement:
    """One element of a set or map."""

    key: tuple[str, ...]  # concatenation parts: ("10.96.0.10", "udp", "53")
    verdict: str | None  # maps of verdicts: "goto", "jump", "drop", "accept", ...
    target: str | None  # chain for goto/jump, or the data of a non-verdict map
    comment: str
    text: str


@dataclass(frozen=True)
class NftSet:
    """A named set or map."""

    family: str
    table: str
    name: str
    kind: str  # "set" or "map"
    type: str
    elements: tuple[NftElement, ...] = ()


@dataclass(frozen=True)
class NftTable:
    """A table with its chains and sets/maps by name."""

    family: str
    name: str
    comment: str = ""
    chains: dict[str, NftChain] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)


@dataclass(frozen=True)
class NftRuleset:
    """A parsed ruleset."""

    tables: tuple[NftTable, ...] = ()
    warnings: tuple[str, ...] = ()  # "# Warning: table ip filter is managed by iptables-nft..."

    def table(self, family: str, name: str) -> NftTable | None:
        """Return the table, None if missing."""
        for table in self.tables:
            if table.family == family and table.name == name:
                return table
        return None


# --- text -----------------------------------------------------------------------------


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split text on sep outside braces and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "{":
            depth += 1
        elif not quoted and char == "}":
            depth -= 1
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _element_from_text(text: str, is_map: bool) -> NftElement:
    """Parse `10.96.0.10 . udp . 53 comment "x" : goto chain` into an NftElement."""
    comment_match = _COMMENT.search(text)
    comment = comment_match.group(1) if comment_match else ""
    body = _COMMENT.sub("", text)
    key_text, data = body, None
    if is_map and " : " in body:
        key_text, data = body.split(" : ", 1)
        data = data.strip()
    # Element options (timeout/expires/counter) follow the key; they are not part of it.
    key_text = re.split(r"\s+(?:timeout|expires|counter|packets)\b", key_text.strip())[0]
    key = tuple(part.strip() for part in key_text.split(" . "))
    verdict = target = None
    if data is not None:
        words = data.split()
        if words and words[0] in ("goto", "jump") and len(words) > 1:
            verdict, target = words[0], words[1]
        elif words and words[0] in ("accept", "drop", "continue", "return", "reject", "queue"):
            verdict = words[0]
        else:
            target = data
    return NftElement(key, verdict, target, comment, text.strip())


def _set_from_text(family: str, table: str, kind: str, name: str, body: str) -> NftSet:
    """Build an NftSet from the text between its braces."""
    type_match = re.search(r"^\s*type\s+(.+?)\s*$", body, re.MULTILINE)
    elements: list[NftElement] = []
    start = body.find("elements = {")
    if start >= 0:
        depth, index = 0, start + len("elements = ")
        for index in range(start + len("elements = "), len(body)):
            if body[index] == "{":
                depth += 1
            elif body[index] == "}":
                depth -= 1
                if depth == 0:
                    break
        inner = body[start + len("elements = {") : index]
        elements = [_element_from_text(e, kind == "map") for e in _split_top(inner)]
    return NftSet(
        family, table, name, kind, type_match.group(1) if type_match else "", tuple(elements)
    )


def parse_nft_ruleset(text: str) -> NftRuleset:
    """Return the ruleset of `nft list ruleset` text output (empty output: no tables)."""
    tables: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = text.splitlines()
    index = 0
    table: dict[str, Any] | None = None
    while index < len(lines):
        line_no, line = index + 1, lines[index].strip()
        index += 1
        if not line:
            continue
        if line.startswith("#"):
            warnings.append(line)
            continue
        if table is None:
            match = _TABLE.match(line)
            if not match:
                raise ParseError("not `nft list ruleset` output", line_no, lines[line_no - 1])
            table = {
                "family": match.group(1),
                "name": match.group(2),
                "comment": "",
                "chains": {},
                "sets": {},
            }
            tables.append(table)
            continue
        if line == "}":
            table = None
            continue
        if line.startswith("comment "):
            found = _COMMENT.match(line)
            table["comment"] = found.group(1) if found else ""
            continue
        one_line = _ONE_LINE_BLOCK.match(line)
        if one_line:
            line, block_lines = f"{one_line.group(1)} {{", [one_line.group(2)]
        elif not line.endswith("{"):
            LOG.debug("ignoring nft table attribute line %d: %r", line_no, line)
            continue
        else:
            block_lines, index = _block(lines, index)
        if match := _CHAIN.match(line):
            table["chains"][match.group(1)] = _chain_from_text(
                table["family"], table["name"], match.group(1), block_lines
            )
        elif match := _SET.match(line):
            table["sets"][match.group(2)] = _set_from_text(
                table["family"],
                table["name"],
                match.group(1),
                match.group(2),
                "\n".join(block_lines),
            )
        else:
            # flowtables, named counters, ct helpers, ...: not needed here.
            LOG.debug("skipping nft block at line %d: %r", line_no, line)
    return NftRuleset(
        tuple(
            NftTable(t["family"], t["name"], t["comment"], t["chains"], t["sets"]) for t in tables
        ),
        tuple(warnings),
    )


def _block(lines: list[str], index: int) -> tuple[list[str], int]:
    """Return the lines up to the brace closing a block opened on the previous line."""
    depth = 1
    body: list[str] = []
    while index < len(lines):
        line = lines[index]
        index += 1
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            break
        body.append(line)
    return body, index


def _chain_from_text(family: str, table: str, name: str, body: list[str]) -> NftChain:
    """Build an NftChain from the lines between its braces."""
    chain_type = hook = priority = policy = None
    rules: list[NftRule] = []
    pending = ""
    for raw in body:
        line = raw.strip()
        if not line:
            continue
        base = _BASE.search(line)
        if base and line.startswith("type "):
            chain_type, hook, priority, policy = (
                base.group(1),
                base.group(2),
                base.group(3).strip(),
                base.group(4),
            )
            continue
        if line.startswith("comment ") and not rules and not pending:
            continue  # the chain's own comment
        pending = f"{pending} {line}".strip()
        if pending.count("{") > pending.count("}"):
            continue  # a rule whose anonymous set spans lines
        comment = _COMMENT.search(pending)
        rules.append(NftRule(pending, comment.group(1) if comment else ""))
        pending = ""
    return NftChain(family, table, name, chain_type, hook, priority, policy, tuple(rules))


# --- JSON -----------------------------------------------------------------------------


def _json_value(value: Any) -> str:
    """Render a JSON expression value the way nft prints it."""
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return f"{_json_value(value['range'][0])}-{_json_value(value['range'][1])}"
        if "concat" in value:
            return " . ".join(_json_value(v) for v in value["concat"])
        if "set" in value:
            items = value["set"] if isinstance(value["set"], list) else [value["set"]]
            return "{ " + ", ".join(_json_set_item(v) for v in items) + " }"
        if "reject" in value:
            return "reject"
        if "payload" in value:
            payload = value["payload"]
            return f"{payload.get('protocol', '')} {payload.get('field', '')}".strip()
        if "meta" in value:
            return f"meta {value['meta'].get('key', '')}"
        if "ct" in value:
            return f"ct {value['ct'].get('key', '')}"
        if "numgen" in value:
            numgen = value["numgen"]
            return f"numgen {numgen.get('mode', '')} mod {numgen.get('mod', '')}"
        for verdict in ("goto", "jump"):
            if verdict in value:
                return f"{verdict} {value[verdict]['target']}"
        if len(value) == 1:
            key = next(iter(value))
            return key if value[key] is None else f"{key} {_json_value(value[key])}"
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return ",".join(_json_value(v) for v in value)
    return str(value)


def _json_set_item(item: Any) -> str:
    """Render an anonymous set item; [key, value] pairs are verdict map entries."""
    if isinstance(item, list) and len(item) == 2:
        return f"{_json_value(item[0])} : {_json_value(item[1])}"
    return _json_value(item)


def _json_statement(statement: dict[str, Any]) -> str:
    """Render one JSON rule statement as nft text (best effort)."""
    if "match" in statement:
        match = statement["match"]
        op = match.get("op", "==")
        left, right = _json_value(match.get("left")), _json_value(match.get("right"))
        return f"{left} {right}" if op in ("==", "in") else f"{left} {op} {right}"
    if "vmap" in statement:
        vmap = statement["vmap"]
        return f"{_json_value(vmap.get('key'))} vmap {_json_value(vmap.get('data'))}"
    if "dnat" in statement or "snat" in statement:
        kind = "dnat" if "dnat" in statement else "snat"
        nat = statement[kind] or {}
        return f"{kind} to {_nat_destination(nat)}"
    if "counter" in statement:
        counter = statement["counter"] or {}
        return f"counter packets {counter.get('packets', 0)} bytes {counter.get('bytes', 0)}"
    return _json_value(statement)


def _nat_destination(nat: dict[str, Any]) -> str:
    """Return "addr:port" ("[addr]:port" for IPv6) of a JSON dnat/snat statement."""
    addr = _json_value(nat.get("addr", ""))
    port = nat.get("port")
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _json_element(item: Any, is_map: bool) -> NftElement:
    """Build an NftElement from a JSON set/map element."""
    key_value, data = (item[0], item[1]) if is_map and isinstance(item, list) else (item, None)
    comment = ""
    if isinstance(key_value, dict) and "elem" in key_value:
        comment = key_value["elem"].get("comment", "")
        key_value = key_value["elem"].get("val")
    if isinstance(key_value, dict) and "concat" in key_value:
        key = tuple(_json_value(v) for v in key_value["concat"])
    else:
        key = (_json_value(key_value),)
    verdict = target = None
    if isinstance(data, dict):
        for name in ("goto", "jump"):
            if name in data:
                verdict, target = name, data[name]["target"]
        if verdict is None and len(data) == 1 and next(iter(data.values())) is None:
            verdict = next(iter(data))
    elif data is not None:
        target = _json_value(data)
    text = " . ".join(key)
    if comment:
        text += f' comment "{comment}"'
    if data is not None:
        text += f" : {_json_value(data)}"
    return NftElement(key, verdict, target, comment, text)


def parse_nft_json(text: str) -> NftRuleset:
    """Return the ruleset of `nft -j list ruleset` output."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"not nft JSON output: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("nftables"), list):
        raise ParseError('not nft JSON output: no top-level "nftables" list')
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in document["nftables"]:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, body = next(iter(item.items()))
        if kind == "table":
            tables[(body["family"], body["name"])] = {
                "comment": body.get("comment", ""),
                "chains": {},
                "sets": {},
            }
        elif kind == "chain":
            chains[(body["family"], body["table"], body["name"])] = {"spec": body, "rules": []}
        elif kind == "rule":
            key = (body["family"], body["table"], body["chain"])
            expr = body.get("expr", [])
            rendered = " ".join(_json_statement(s) for s in expr if isinstance(s, dict))
            comment = body.get("comment", "")
            if comment:
                rendered += f' comment "{comment}"'
            rule = NftRule(rendered, comment, body.get("handle"), expr)
            chains.setdefault(key, {"spec": {"name": body["chain"]}, "rules": []})
            chains[key]["rules"].append(rule)
        elif kind in ("set", "map"):
            elements = tuple(_json_element(e, kind == "map") for e in body.get("elem", []))
            set_type = body.get("type", "")
            if isinstance(set_type, list):
                set_type = " . ".join(set_type)
            if kind == "map":
                set_type = f"{set_type} : {body.get('map', '')}"
            table = tables.setdefault(
                (body["family"], body["table"]), {"comment": "", "chains": {}, "sets": {}}
            )
            table["sets"][body["name"]] = NftSet(
                body["family"], body["table"], body["name"], kind, set_type, elements
            )
    for (family, table_name, name), entry in chains.items():
        spec = entry["spec"]
        prio = spec.get("prio")
        chain = NftChain(
            family,
            table_name,
            name,
            spec.get("type"),
            spec.get("hook"),
            None if prio is None else str(prio),
            spec.get("policy"),
            tuple(entry["rules"]),
        )
        tables.setdefault((family, table_name), {"comment": "", "chains": {}, "sets": {}})
        tables[(family, table_name)]["chains"][name] = chain
    return NftRuleset(
        tuple(NftTable(f, n, t["comment"], t["chains"], t["sets"]) for (f, n), t in tables.items())
    )


# --- lookups --------------------------------------------------------------------------


def forward_chains(ruleset: NftRuleset) -> list[NftChain]:
    """Return the base chains on the forward hook of ip/ip6/inet tables, by priority."""
    found = [
        chain
        for table in ruleset.tables
        if table.family in _FORWARD_FAMILIES
        for chain in table.chains.values()
        if chain.hook == "forward"
    ]
    return sorted(found, key=lambda c: _priority_value(c.priority))


def _priority_value(priority: str | None) -> int:
    """Return a chain priority as a number ("filter" is 0, "filter + 10" is 10)."""
    if priority is None:
        return 0
    match = re.match(r"^\s*(-?\d+|[a-z]+)\s*(?:([+-])\s*(\d+))?\s*$", priority)
    if not match:
        return 0
    base = match.group(1)
    value = int(base) if re.match(r"^-?\d+$", base) else _NAMED_PRIORITIES.get(base, 0)
    if match.group(2):
        value += int(match.group(3)) * (1 if match.group(2) == "+" else -1)
    return value


def forward_policy(ruleset: NftRuleset) -> str | None:
    """Return "drop" if any forward base chain drops by policy, "accept" if all accept.

    Every base chain on the hook sees the packet and a drop in any of them is final, so
    one chain with `policy drop` is enough to drop forwarded traffic its rules do not
    accept. None when no table has a forward base chain.
    """
    policies = [chain.policy or "accept" for chain in forward_chains(ruleset)]
    if not policies:
        return None
    return "drop" if "drop" in policies else "accept"


def _targets(rule: NftRule) -> list[str]:
    """Return the chains a rule jumps or goes to."""
    if rule.expr is not None:
        found: list[str] = []
        _collect(rule.expr, found, None)
        return found
    return [t.rstrip(",}") for t in re.findall(r"\b(?:goto|jump)\s+([^\s,}]+)", rule.text)]


def _dnats(rule: NftRule) -> list[str]:
    """Return the `dnat to` destinations of a rule."""
    if rule.expr is not None:
        found: list[str] = []
        _collect(rule.expr, None, found)
        return found
    return re.findall(r"\bdnat\s+(?:ip6?\s+)?to\s+([^\s,}]+)", rule.text)


def _collect(value: Any, targets: list[str] | None, dnats: list[str] | None) -> None:
    """Walk a JSON expression collecting jump/goto targets or dnat destinations."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("goto", "jump") and targets is not None and isinstance(inner, dict):
                targets.append(inner.get("target", ""))
            elif key == "dnat" and dnats is not None and isinstance(inner, dict):
                dnats.append(_nat_destination(inner))
            else:
                _collect(inner, targets, dnats)
    elif isinstance(value, list):
        for inner in value:
            _collect(inner, targets, dnats)


def _key_matches(element: NftElement, ip: Any, protocol: str, port: int) -> bool:
    """Return whether a map element's key is (ip . protocol . port)."""
    if len(element.key) != 3:
        return False
    address, proto, service = element.key
    try:
        same_ip = ipaddress.ip_address(address) == ip
    except ValueError:
        return False
    return same_ip and proto.lower() == protocol and service == str(port)


def kube_proxy_service(
    ruleset: NftRuleset, cluster_ip: str, port: int, protocol: str = "tcp"
) -> ServiceRules:
    """Return how kube-proxy's nftables-mode rules treat traffic to cluster_ip:port/protocol."""
    ip = ipaddress.ip_address(cluster_ip)
    protocol = protocol.lower()
    table = ruleset.table("ip" if ip.version == 4 else "ip6", "kube-proxy")
    if table is None:
        return ServiceRules("none", (), ())
    evidence: list[str] = []

    service_ips = table.sets.get("service-ips")
    for element in service_ips.elements if service_ips else ():
        if _key_matches(element, ip, protocol, port) and element.target:
            evidence.append(f"service-ips: {element.text}")
            endpoints: list[str] = []
            followed: list[str] = []
            _follow(table, element.target, evidence, endpoints, followed, 1)
            service = _service_from_chain(element.target)
            if endpoints:
                return ServiceRules(
                    "dnat", tuple(endpoints), tuple(evidence), service, tuple(followed)
                )
            return ServiceRules("none", (), tuple(evidence), service, tuple(followed))

    no_endpoints = table.sets.get("no-endpoint-services")
    for element in no_endpoints.elements if no_endpoints else ():
        if _key_matches(element, ip, protocol, port):
            kind = "drop" if element.verdict == "drop" else "reject"
            return ServiceRules(
                kind, (), (f"no-endpoint-services: {element.text}",), element.comment or None
            )

    return _cluster_ips_check(table, ip)


def _cluster_ips_check(table: NftTable, ip: Any) -> ServiceRules:
    """Return what cluster-ips-check does to an IP no service map matched."""
    chain = table.chains.get("cluster-ips-check")
    cluster_ips = table.sets.get("cluster-ips")
    known = cluster_ips is not None and any(
        element.key == (str(ip),) for element in cluster_ips.elements
    )
    for rule in chain.rules if chain else ():
        if known and "@cluster-ips" in rule.text and "reject" in rule.text:
            return ServiceRules("reject", (), (f"cluster-ips: {ip}", rule.text))
        for prefix in re.findall(r"(\d[\d.:a-fA-F]*/\d+)", rule.text):
            network = ipaddress.ip_network(prefix, strict=False)
            if network.version == ip.version and ip in network and "drop" in rule.text:
                return ServiceRules("drop", (), (rule.text,))
    return ServiceRules("none", (), ())


def _service_from_chain(chain: str) -> str | None:
    """Return "ns/name:port" from a kube-proxy chain name like service-HASH-ns/name/tcp/port."""
    match = re.match(r"^[a-z]+-[A-Z0-9]+-([^/]+)/([^/]+)/[^/]+/([^_]+)", chain)
    return f"{match.group(1)}/{match.group(2)}:{match.group(3)}" if match else None


def _follow(
    table: NftTable,
    name: str,
    evidence: list[str],
    endpoints: list[str],
    followed: list[str],
    depth: int,
) -> None:
    """Collect dnat destinations reachable from a chain (mark-for-masquerade skipped)."""
    chain = table.chains.get(name)
    if chain is None or name in followed or depth > MAX_JUMP_DEPTH:
        return
    followed.append(name)
    for rule in chain.rules:
        destinations = _dnats(rule)
        if destinations:
            evidence.append(f"{name}: {rule.text}")
            endpoints.extend(d for d in destinations if d not in endpoints)
            continue
        targets = [t for t in _targets(rule) if t != "mark-for-masquerade"]
        if targets:
            evidence.append(f"{name}: {rule.text}")
        for target in targets:
            _follow(table, target, evidence, endpoints, followed, depth + 1)
