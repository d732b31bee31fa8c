"""Parsers for BIRD 1.x and 2.x `show protocols`, `show protocols all` and `show route`.

Three input shapes are read alike:
- `birdc`/`birdcl` output, with or without the `BIRD x.y ready.` banner;
- raw control-socket replies, where every line starts with a 4-digit code and `-` (more
  lines follow) or a space (last line), and a line starting with a single space continues
  the previous code (`1002-` rows, `1006-` details, `2002-` the table header, `0000` end);
- BIRD 1 tables (`name proto table state since info`, lower case) and BIRD 2 ones.

Columns are split on whitespace, never by width: a long protocol name pushes the other
columns to the right (`peer_10_77_2_68 BGP        ---  ...`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from k8sreach.parsers.errors import ParseError

LOG = logging.getLogger(__name__)

# Words BIRD prints as the first word of a BGP protocol's info column (bgp_state_dsc()).
BGP_STATES = frozenset(
    {
        "Idle",
        "Connect",
        "Active",
        "OpenSent",
        "OpenConfirm",
        "Established",
        "Close",
        "Passive",
        "Down",
    }
)

_RAW_LINE = re.compile(r"^(\d{4})([ -])(.*)$")
_HEADER = re.compile(r"^\s*name\s+proto\s+table\s+state\s+since\s+info\s*$", re.IGNORECASE)
_BANNER = re.compile(r"^BIRD (\S+) ready\.\s*$")
_VERSION_PATTERNS = (
    re.compile(r"^(?:\d{4}[ -])?BIRD (\d+(?:\.\d+)+\S*) ready\.", re.MULTILINE),
    re.compile(r"^BIRD version (\d+(?:\.\d+)+\S*)", re.MULTILINE),
    re.compile(r"^(?:\d{4}[ -])?BIRD (\d+(?:\.\d+)+\S*)\s*$", re.MULTILINE),
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_ROUTES = re.compile(r"(\d+) (imported|filtered|exported|preferred)")
_KEY_VALUE = re.compile(r"^([A-Za-z0-9][^:]*?):(?:\s+(.*))?$")
_ROUTE_HEAD = re.compile(
    r"^(?P<prefix>\S+)\s+(?:(?P<kind>unicast|blackhole|unreachable|prohibit|multicast)\s+)?"
    r"(?:via (?P<via>\S+) on (?P<iface>\S+)\s+|dev (?P<dev>\S+)\s+)?"
    r"\[(?P<proto>\S+) (?P<since>[^\]]*?)(?: from (?P<from>\S+))?\]"
    r"(?P<primary> \*)?(?: \((?P<pref>\d+)(?:/[^)]*)?\))?(?: \[(?P<attrs>[^\]]*)\])?"
)


@dataclass(frozen=True)
class Protocol:
    """One row of `show protocols`."""

    name: str
    proto: str  # "BGP", "Kernel", "Device", "Static", ... as BIRD prints it
    table: str  # "master4", "master" (BIRD 1), "---" (BIRD 2 BGP with channels)
    state: str  # "up", "start", "down", "stop", "flush"
    since: str  # as printed: "13:47:39.700", "14:15:20", "2024-01-05 13:47:39"
    info: str  # first word of the info column: BGP state ("Established", "Active", ...)
    message: str  # rest of the info column: "Socket: Connection refused", "" when none
    line: str  # the row as printed (without a raw reply code)

    @property
    def is_bgp(self) -> bool:
        """Return whether this is a BGP protocol."""
        return self.proto.upper() == "BGP"

    @property
    def established(self) -> bool:
        """Return whether the BGP session is Established."""
        return self.info == "Established"


@dataclass(frozen=True)
class Channel:
    """One channel of `show protocols all` (BIRD 2 `Channel ipv4`; BIRD 1 has one, name '')."""

    name: str
    state: str  # "UP"/"DOWN" (BIRD 2); "" for BIRD 1
    table: str
    imported: int | None
    exported: int | None
    preferred: int | None
    filtered: int | None
    input_filter: str
    output_filter: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolDetail:
    """A protocol with its `show protocols all` block."""

    protocol: Protocol
    description: str
    bgp_state: str  # "Established", "Active", "Idle", "Down", ...; "" for non-BGP
    neighbor_address: str
    neighbor_as: int | None
    local_as: int | None
    neighbor_id: str
    source_address: str
    last_error: str  # "Socket: Connection refused", "BGP Error: Bad peer AS", ...
    channels: tuple[Channel, ...]
    attributes: dict[str, str] = field(default_factory=dict)  # other "Key: value" lines
    lines: tuple[str, ...] = ()  # the detail lines as printed

    @property
    def imported_routes(self) -> int | None:
        """Return the routes imported over all channels, None if BIRD printed no count."""
        counts = [c.imported for c in self.channels if c.imported is not None]
        return sum(counts) if counts else None

    @property
    def exported_routes(self) -> int | None:
        """Return the routes exported over all channels, None if BIRD printed no count."""
        counts = [c.exported for c in self.channels if c.exported is not None]
        return sum(counts) if counts else None


@dataclass(frozen=True)
class Route:
    """One route of `show route` (the first line of each entry)."""

    prefix: str
    kind: str  # "unicast", "blackhole", ... ("" when BIRD 1 prints a next hop instead)
    protocol: str  # protocol that provided it, e.g. "node1"
    since: str
    primary: bool  # marked with '*': the best route, the one exported to the kernel
    preference: int | None
    via: str  # next hop address, "" when none
    interface: str
    table: str
    attributes: str  # the trailing "[i]" / "[AS64512i]" text
    line: str


@dataclass(frozen=True)
class _Line:
    """A reply line classified: code is the raw reply code, or a kind for birdc text."""

    code: int | None
    text: str
    line_no: int
    raw: str


def _is_raw(text: str) -> bool:
    """Return whether the text is a raw control-socket reply (numbered lines)."""
    for line in text.splitlines():
        if line.strip():
            return bool(_RAW_LINE.match(line))
    return False


def _raw_lines(text: str) -> list[_Line]:
    """Split a raw reply into coded lines; continuation lines inherit the previous code."""
    out: list[_Line] = []
    code: int | None = None
    for no, line in enumerate(text.splitlines(), 1):
        match = _RAW_LINE.match(line)
        if match:
            code = int(match.group(1))
            body = match.group(3)
        elif line.startswith(" ") and code is not None:
            body = line[1:]
        elif not line.strip():
            continue
        else:
            raise ParseError("not a BIRD control-socket reply line", no, line)
        if code >= 8000:
            # 8xxx: run-time errors ("No protocols match"), 9xxx: parse errors.
            raise ParseError(f"BIRD error {code}: {body.strip()}")
        out.append(_Line(code, body, no, line))
    return out


def _table_lines(text: str) -> tuple[list[_Line], list[_Line]]:
    """Return (rows, details) of a protocol table, with details in birdc indentation."""
    rows: list[_Line] = []
    details: list[_Line] = []
    header_seen = False
    if _is_raw(text):
        for item in _raw_lines(text):
            if item.code == 2002:
                header_seen = True
            elif item.code == 1002:
                rows.append(item)
            elif item.code == 1006:
                details.append(_Line(len(rows) - 1, item.text, item.line_no, item.raw))
        if not header_seen:
            raise ParseError("raw BIRD reply has no protocol table (no 2002 header line)")
        return rows, details

    first_other: tuple[int, str] | None = None
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not header_seen:
            if _HEADER.match(line):
                header_seen = True
            elif not _BANNER.match(line) and first_other is None:
                first_other = (no, line)
            continue
        if _HEADER.match(line):
            continue  # a second table (e.g. two commands' output joined)
        if line[0].isspace():
            details.append(_Line(len(rows) - 1, line, no, line))
        else:
            rows.append(_Line(None, line, no, line))
    if not header_seen:
        if first_other is not None:
            # birdc prints BIRD's own error ("syntax error, ...", "Unable to connect to
            # server control socket ...") where the table would be.
            raise ParseError("no BIRD protocol table in output", *first_other)
        raise ParseError("no BIRD protocol table in output (empty or only the banner)")
    return rows, details


def _split_row(line: str) -> Protocol | None:
    """Return the Protocol for a table row, None if the row has too few columns."""
    tokens = list(re.finditer(r"\S+", line))
    if len(tokens) < 5:
        return None
    words = [t.group(0) for t in tokens]
    since_len = 1
    if len(words) > 5 and _DATE.match(words[4]) and _TIME.match(words[5]):
        since_len = 2  # BIRD 1 `timeformat protocol iso long` / BIRD 2 for old sessions
    elif not (_DATE.match(words[4]) or _TIME.match(words[4])):
        # An unknown `timeformat` (it may contain spaces): the since column ends where a
        # known BGP state word starts, else it is taken as one word.
        for index in range(5, len(words)):
            if words[index] in BGP_STATES:
                since_len = index - 4
                break
    info_index = 4 + since_len
    since = " ".join(words[4:info_index])
    info = words[info_index] if len(words) > info_index else ""
    message = line[tokens[info_index].end() :].strip() if info else ""
    return Protocol(
        name=words[0],
        proto=words[1],
        table=words[2],
        state=words[3],
        since=since,
        info=info,
        message=message,
        line=line.rstrip(),
    )


def parse_show_protocols(text: str) -> list[Protocol]:
    """Return the protocols of `show protocols` (birdc text or raw reply, BIRD 1 or 2)."""
    rows, _ = _table_lines(text)
    protocols = []
    for row in rows:
        protocol = _split_row(row.text)
        if protocol is None:
            LOG.warning("skipping BIRD protocol row with too few columns: %r", row.text)
            continue
        protocols.append(protocol)
    return protocols


def _to_int(value: str | None) -> int | None:
    """Return value as int, None when missing or not a number."""
    if value is None:
        return None
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _channel(name: str, state: str, table: str, attrs: dict[str, str]) -> Channel:
    """Build a Channel from its key/value lines."""
    counts = {kind: int(n) for n, kind in _ROUTES.findall(attrs.get("Routes", ""))}
    return Channel(
        name=name,
        state=attrs.get("State", state),
        table=attrs.get("Table", table),
        imported=counts.get("imported"),
        exported=counts.get("exported"),
        preferred=counts.get("preferred"),
        filtered=counts.get("filtered"),
        input_filter=attrs.get("Input filter", ""),
        output_filter=attrs.get("Output filter", ""),
        attributes=attrs,
    )


def _detail(protocol: Protocol, lines: list[str]) -> ProtocolDetail:
    """Build a ProtocolDetail from the indented lines under a protocol row."""
    top: dict[str, str] = {}
    channels: list[tuple[str, dict[str, str]]] = []
    current = top
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("Channel ") and ":" not in stripped:
            channels.append((stripped.split(None, 1)[1], {}))
            current = channels[-1][1]
            continue
        match = _KEY_VALUE.match(stripped)
        if match and match.group(1) not in current:
            current[match.group(1)] = (match.group(2) or "").strip()

    built = [_channel(name, "", "", attrs) for name, attrs in channels]
    if not channels and ("Routes" in top or "Input filter" in top):
        # BIRD 1: one implicit channel, its keys printed at the top level.
        built.append(_channel("", "", protocol.table, top))
    return ProtocolDetail(
        protocol=protocol,
        description=top.get("Description", ""),
        bgp_state=top.get("BGP state", ""),
        neighbor_address=top.get("Neighbor address", ""),
        neighbor_as=_to_int(top.get("Neighbor AS")),
        local_as=_to_int(top.get("Local AS")),
        neighbor_id=top.get("Neighbor ID", ""),
        source_address=top.get("Source address", ""),
        last_error=top.get("Last error", ""),
        channels=tuple(built),
        attributes=top,
        lines=tuple(line.rstrip() for line in lines if line.strip()),
    )


def parse_show_protocols_all(text: str) -> dict[str, ProtocolDetail]:
    """Return `show protocols all [NAME]` as {protocol name: ProtocolDetail}, in BIRD order."""
    rows, details = _table_lines(text)
    by_row: dict[int, list[str]] = {}
    for item in details:
        by_row.setdefault(item.code if item.code is not None else -1, []).append(item.text)
    result: dict[str, ProtocolDetail] = {}
    for index, row in enumerate(rows):
        protocol = _split_row(row.text)
        if protocol is None:
            LOG.warning("skipping BIRD protocol row with too few columns: %r", row.text)
            continue
        result[protocol.name] = _detail(protocol, by_row.get(index, []))
    return result


def parse_bird_version(text: str) -> str | None:
    """Return the BIRD version from a banner, `show status` or `bird --version`, else None."""
    for pattern in _VERSION_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def parse_show_route(text: str) -> list[Route]:
    """Return the routes of `show route` (birdc text or raw reply, BIRD 1 or 2)."""
    if _is_raw(text):
        lines = [(item.line_no, item.text) for item in _raw_lines(text) if item.code != 1]
    else:
        lines = list(enumerate(text.splitlines(), 1))
    entries: list[dict[str, Any]] = []
    table = ""
    seen_table = False
    for no, line in lines:
        if not line.strip() or _BANNER.match(line):
            continue
        if line.startswith("Table ") and line.rstrip().endswith(":"):
            table = line.strip()[6:-1]
            seen_table = True
            continue
        if line[0].isspace():
            # BIRD 2 prints the next hop on the following tab-indented line.
            _add_next_hop(entries[-1] if entries else None, line.strip())
            continue
        head = line.strip()
        if head.startswith("[") and entries:
            head = f"{entries[-1]['prefix']} {head}"  # another route for the same prefix
        match = _ROUTE_HEAD.match(head)
        if not match:
            if not seen_table and not entries:
                raise ParseError("not BIRD `show route` output", no, line)
            LOG.warning("skipping unexpected BIRD route line: %r", line)
            continue
        entries.append(
            {
                "prefix": match.group("prefix"),
                "kind": match.group("kind") or "",
                "protocol": match.group("proto"),
                "since": match.group("since").strip(),
                "primary": bool(match.group("primary")),
                "preference": _to_int(match.group("pref")),
                "via": match.group("via") or "",
                "interface": match.group("iface") or match.group("dev") or "",
                "table": table,
                "attributes": match.group("attrs") or "",
                "line": line.rstrip(),
            }
        )
    return [Route(**entry) for entry in entries]


def _add_next_hop(entry: dict[str, Any] | None, hop: str) -> None:
    """Fill the next hop of a BIRD 2 route from its `via X on IF` / `dev IF` line."""
    if entry is None:
        return
    via = re.match(r"^via (\S+) on (\S+)", hop)
    dev = re.match(r"^dev (\S+)", hop)
    if via and not entry["via"]:
        entry["via"], entry["interface"] = via.group(1), via.group(2)
    elif dev and not entry["interface"]:
        entry["interface"] = dev.group(1)
