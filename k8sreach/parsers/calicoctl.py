"""Parser for `calicoctl node status` (also `kubectl calico node status`)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from k8sreach.parsers.errors import ParseError

LOG = logging.getLogger(__name__)

_RUNNING = "Calico process is running."
_NOT_RUNNING = "Calico process is not running."
_SECTION = re.compile(r"^IPv([46]) BGP status\s*$")
_NO_PEERS = re.compile(r"^No IPv[46] peers found\.\s*$")
_COLUMNS = {
    "PEER ADDRESS": "address",
    "PEER TYPE": "type",
    "STATE": "state",
    "SINCE": "since",
    "INFO": "info",
}


@dataclass(frozen=True)
class Peer:
    """One row of a `calicoctl node status` peer table (wrapped rows joined)."""

    address: str
    type: str  # "node-to-node mesh", "global", "node specific"
    state: str  # BIRD protocol state: "up", "start", "down", ...
    since: str  # "04:08:47" or a date "2023-09-21" for old sessions
    info: str  # "Established", "Idle", "Active Socket: Connection refused", ...

    @property
    def bgp_state(self) -> str:
        """Return the BGP state, the first word of info ("Active")."""
        return self.info.split(" ", 1)[0] if self.info else ""

    @property
    def message(self) -> str:
        """Return info after the BGP state ("Socket: Connection refused"), "" if none."""
        parts = self.info.split(" ", 1)
        return parts[1].strip() if len(parts) > 1 else ""

    @property
    def established(self) -> bool:
        """Return whether the session is Established."""
        return self.bgp_state == "Established"


@dataclass(frozen=True)
class NodeStatus:
    """What `calicoctl node status` reported."""

    running: bool
    ipv4: tuple[Peer, ...]
    ipv6: tuple[Peer, ...]
    notes: tuple[str, ...] = ()  # other lines, e.g. "INFO: BIRDv6 process: 'bird6' is not running."


def _cells(line: str) -> list[str]:
    """Return the stripped cells of a `| a | b |` table row."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in inner.split("|")]


def _table_peers(rows: list[tuple[int, str]]) -> list[Peer]:
    """Return the peers of one table given its `|` rows (header first)."""
    if not rows:
        return []
    header = [cell.upper() for cell in _cells(rows[0][1])]
    index = {field: header.index(name) for name, field in _COLUMNS.items() if name in header}
    if "address" not in index:
        raise ParseError("peer table has no PEER ADDRESS column", *rows[0])
    merged: list[list[str]] = []
    for line_no, line in rows[1:]:
        cells = _cells(line)
        if not cells[index["address"]] and merged:
            # tablewriter wraps a long cell onto extra rows with the other cells empty.
            previous = merged[-1]
            for position, cell in enumerate(cells):
                if cell and position < len(previous):
                    previous[position] = f"{previous[position]} {cell}".strip()
            continue
        if not cells[index["address"]]:
            LOG.warning("skipping calicoctl continuation row without a peer: line %d", line_no)
            continue
        merged.append(cells)

    def get(cells: list[str], name: str) -> str:
        position = index.get(name)
        return cells[position] if position is not None and position < len(cells) else ""

    return [
        Peer(get(c, "address"), get(c, "type"), get(c, "state"), get(c, "since"), get(c, "info"))
        for c in merged
    ]


def parse_node_status(text: str) -> NodeStatus:
    """Return the Calico process state and the IPv4/IPv6 BGP peers of `calicoctl node status`."""
    running: bool | None = None
    tables: dict[str, list[tuple[int, str]]] = {"4": [], "6": []}
    notes: list[str] = []
    section: str | None = None
    first_other: tuple[int, str] | None = None
    for line_no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("+"):
            continue
        if stripped == _RUNNING:
            running = True
        elif stripped == _NOT_RUNNING:
            running = False
        elif match := _SECTION.match(stripped):
            section = match.group(1)
        elif _NO_PEERS.match(stripped):
            continue
        elif stripped.startswith("|") and section is not None:
            tables[section].append((line_no, stripped))
        else:
            notes.append(stripped)
            if first_other is None:
                first_other = (line_no, line)
    if running is None and section is None:
        if first_other is not None:
            raise ParseError("not `calicoctl node status` output", *first_other)
        raise ParseError("not `calicoctl node status` output (empty)")
    return NodeStatus(
        running=bool(running) if running is not None else True,
        ipv4=tuple(_table_peers(tables["4"])),
        ipv6=tuple(_table_peers(tables["6"])),
        notes=tuple(notes),
    )
