"""The client's routing table on Linux, macOS and Windows, and kernel-like lookups in it."""

from __future__ import annotations

import codecs
import ipaddress
import json
import logging
import ntpath
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from k8sreach.errors import ToolError

LOG = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ByteOrder = Literal["little", "big"]

SOURCE_LINUX_PROC = "linux-proc"
SOURCE_LINUX_NETLINK = "linux-netlink"
SOURCE_MACOS_NETSTAT = "macos-netstat"
SOURCE_WINDOWS_ROUTE_PRINT = "windows-route-print"

COMMAND_TIMEOUT = 5.0


class RouteReadError(ToolError):
    """The routing table could not be read, or the text given is not a routing table."""


@dataclass(frozen=True)
class Route:
    """One routing table entry, with the line it came from as evidence."""

    destination: IPNetwork
    gateway: IPAddress | None
    interface: str | None
    metric: int | None
    source: str
    persistent: bool = False
    table: str | None = None
    flags: str | None = None
    raw: str = ""
    protocol: str | None = None

    @property
    def is_default(self) -> bool:
        """True for the default route (0.0.0.0/0 or ::/0)."""
        return self.destination.prefixlen == 0


# --- Linux: /proc/net/route and /proc/net/ipv6_route -----------------------------------------

_RTF_UP = 0x0001
_RTF_GATEWAY = 0x0002
_RTF_REJECT = 0x0200
_RTF_LOCAL = 0x80000000
# The letters route(8) prints, in its order; "n" (no next hop) and "e" (expires) are IPv6 only.
_RTF_LETTERS = (
    (_RTF_UP, "U"),
    (_RTF_GATEWAY, "G"),
    (0x0004, "H"),
    (0x0008, "R"),
    (0x0010, "D"),
    (0x0020, "M"),
    (0x00040000, "A"),
    (0x01000000, "C"),
    (0x00200000, "n"),
    (0x00400000, "e"),
    (_RTF_REJECT, "!"),
)
_IPV6_NULL_METRIC = 0xFFFFFFFF


def _rtf_letters(flags: int) -> str:
    return "".join(letter for bit, letter in _RTF_LETTERS if flags & bit)


def read_linux_routes(proc_root: str | os.PathLike[str] = "/proc") -> list[Route]:
    """Return the IPv4 main table and the IPv6 routes the kernel shows under `proc_root`."""
    # Known shortcoming: /proc/net/route shows only the main table and nothing here reads the
    # policy routing rules (`ip rule`), so a client that steers cluster traffic with rules into
    # another table (some VPN clients do) is judged by its main table alone.
    net = Path(proc_root) / "net"
    text4 = _read_proc(net / "route")
    routes = parse_proc_net_route(text4, byteorder=sys.byteorder)
    path6 = net / "ipv6_route"
    if not path6.exists():
        LOG.debug("no %s: IPv6 is disabled on this host", path6)
        return routes
    return routes + parse_proc_ipv6_route(_read_proc(path6))


def _read_proc(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise RouteReadError(f"cannot read {path}: {exc.strerror or exc}") from exc


def parse_proc_net_route(text: str, byteorder: ByteOrder = "little") -> list[Route]:
    """Return the routes in /proc/net/route text (the kernel's IPv4 main table)."""
    # The kernel prints each address as a host-order 32-bit hex number, so its byte order is
    # the machine's: read_linux_routes passes sys.byteorder, fixtures come from little-endian.
    lines = text.splitlines()
    header = lines[0].split() if lines else []
    if header[:3] != ["Iface", "Destination", "Gateway"]:
        first = lines[0].strip()[:60] if lines else ""
        raise RouteReadError(
            "not /proc/net/route text: expected a header starting 'Iface Destination Gateway', "
            f"got {first!r}"
        )
    columns = {name: index for index, name in enumerate(header)}
    routes = []
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            routes.append(_proc_route(line.split(), columns, byteorder, line.strip()))
        except (KeyError, IndexError, ValueError) as exc:
            LOG.warning("skipping unreadable /proc/net/route line %r: %s", line.strip(), exc)
    return routes


def _proc_route(
    fields: list[str], columns: dict[str, int], byteorder: ByteOrder, raw: str
) -> Route:
    def address(name: str) -> ipaddress.IPv4Address:
        value = int(fields[columns[name]], 16)
        return ipaddress.IPv4Address(value.to_bytes(4, byteorder))

    flags = int(fields[columns["Flags"]], 16)
    gateway = address("Gateway") if flags & _RTF_GATEWAY else None
    iface = fields[columns["Iface"]]
    return Route(
        destination=ipaddress.IPv4Network((address("Destination"), str(address("Mask"))), False),
        gateway=gateway,
        # "*" is a route without a device: blackhole, unreachable, prohibit.
        interface=None if iface == "*" else iface,
        metric=int(fields[columns["Metric"]]),
        source=SOURCE_LINUX_PROC,
        table="main",
        flags=_rtf_letters(flags),
        raw=raw,
    )


def parse_proc_ipv6_route(text: str) -> list[Route]:
    """Return the routes in /proc/net/ipv6_route text (empty text: no routes)."""
    # Known shortcoming: this file lists the routes of every table (local, main and any policy
    # routing table) without saying which; only local routes can be told apart (RTF_LOCAL), so
    # a route from another table is looked up as if it were in the main table.
    routes = []
    recognised = 0
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        fields = line.split()
        try:
            route = _proc_ipv6_route(fields, line.strip())
        except (IndexError, ValueError) as exc:
            LOG.warning("skipping unreadable /proc/net/ipv6_route line %r: %s", line.strip(), exc)
            continue
        recognised += 1
        if route is not None:
            routes.append(route)
    if lines and not recognised:
        raise RouteReadError(
            "not /proc/net/ipv6_route text: no line has the 10 hex fields "
            f"'destination prefix source prefix next-hop metric refs use flags device', "
            f"first line {lines[0].strip()[:60]!r}"
        )
    return routes


def _proc_ipv6_route(fields: list[str], raw: str) -> Route | None:
    if len(fields) != 10 or any(len(fields[i]) != 32 for i in (0, 2, 4)):
        raise ValueError(f"expected 10 fields with 32-digit addresses, got {len(fields)} fields")
    destination = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
    prefixlen = int(fields[1], 16)
    next_hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
    metric = int(fields[5], 16)
    flags = int(fields[8], 16)
    iface = fields[9]
    if flags & _RTF_REJECT and prefixlen == 0 and metric == _IPV6_NULL_METRIC and iface == "lo":
        # The kernel's placeholder at the root of every table, not a route anyone added; kept,
        # it would turn every IPv6 lookup without a default route into a reject on lo.
        return None
    return Route(
        destination=ipaddress.IPv6Network((destination, prefixlen), False),
        gateway=next_hop if flags & _RTF_GATEWAY and int(next_hop) else None,
        interface=iface,
        metric=metric,
        source=SOURCE_LINUX_PROC,
        table="local" if flags & _RTF_LOCAL else None,
        flags=_rtf_letters(flags),
        raw=raw,
    )


# --- Linux: `ip -j route show table all` ------------------------------------------------------


def parse_ip_json_route(text: str, family: int | None = None) -> list[Route]:
    """Return the routes in `ip -j [-6] route show [table all]` output.

    `family` (4 or 6) settles a `default` entry with nothing else saying its family.
    """
    if not text.strip():
        return []  # some iproute2 versions print nothing at all for an empty table
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RouteReadError(
            f"not `ip -j route` output: invalid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})"
        ) from exc
    if not isinstance(data, list):
        raise RouteReadError(
            f"not `ip -j route` output: expected a JSON list of routes, got {type(data).__name__}"
        )
    routes = []
    for entry in data:
        try:
            routes.extend(_ip_json_routes(entry, family))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            LOG.warning("skipping unreadable `ip -j route` entry %r: %s", entry, exc)
    return routes


def _ip_json_routes(entry: dict[str, Any], family: int | None) -> list[Route]:
    raw = json.dumps(entry, separators=(",", ":"))
    kind = entry.get("type", "unicast")
    routes = []
    # A multipath route lists its next hops; each becomes one Route with the same destination.
    hops = entry.get("nexthops") or [entry]
    for hop in hops:
        gateway_text = hop.get("gateway") or (hop.get("via") or {}).get("host")
        gateway = ipaddress.ip_address(gateway_text) if gateway_text else None
        flags = ([kind] if kind != "unicast" else []) + list(hop.get("flags") or [])
        if hop is not entry:
            flags += [f for f in entry.get("flags") or [] if f not in flags]
        routes.append(
            Route(
                destination=_ip_json_destination(entry, gateway, family),
                gateway=gateway,
                interface=hop.get("dev"),
                metric=int(entry.get("metric", 0)),  # ip leaves out a metric of 0
                source=SOURCE_LINUX_NETLINK,
                table=str(entry.get("table", "main")),
                flags=",".join(flags) or None,
                raw=raw,
                protocol=entry.get("protocol"),
            )
        )
    return routes


def _ip_json_destination(
    entry: dict[str, Any], gateway: IPAddress | None, family: int | None
) -> IPNetwork:
    dst = entry["dst"]
    if dst != "default":
        return ipaddress.ip_network(dst, strict=False)
    version: int
    if gateway is not None:
        version = gateway.version
    elif entry.get("prefsrc"):
        version = ipaddress.ip_address(entry["prefsrc"]).version
    elif "pref" in entry:  # the router preference exists only for IPv6 routes
        version = 6
    else:
        version = family or 4
    return ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")


# --- macOS: `netstat -rn` ----------------------------------------------------------------------

_SECTION = re.compile(r"^([A-Za-z0-9]+):$")
_MACOS_FAMILIES = {"Internet": 4, "Internet6": 6}


def parse_macos_netstat(text: str) -> list[Route]:
    """Return the routes in macOS `netstat -rn` output (Internet: and Internet6: sections)."""
    routes = []
    columns: list[str] | None = None
    family: int | None = None
    skipping = False
    seen_header = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        section = _SECTION.match(stripped)
        if section:
            family = _MACOS_FAMILIES.get(section.group(1))
            skipping = family is None
            columns = None
            continue
        fields = stripped.split()
        if fields[0] == "Destination" and "Gateway" in fields and "Netif" in fields:
            # Older releases add Refs and Use columns, `-l` adds Mtu: go by the header.
            columns = fields
            seen_header = True
            continue
        if columns is None or skipping:
            continue
        try:
            routes.append(_macos_route(fields, columns, family, stripped))
        except (IndexError, ValueError) as exc:
            LOG.warning("skipping unreadable `netstat -rn` line %r: %s", stripped, exc)
    if not seen_header:
        raise RouteReadError(
            "not `netstat -rn` output: no 'Destination Gateway Flags ... Netif' header found"
        )
    return routes


def _macos_route(fields: list[str], columns: list[str], family: int | None, raw: str) -> Route:
    netif = columns.index("Netif")
    if len(fields) <= netif:
        raise ValueError(f"expected at least {netif + 1} columns, got {len(fields)}")
    gateway_text = fields[columns.index("Gateway")]
    flags = fields[columns.index("Flags")]
    # The Gateway column also holds link#N, a MAC address or the interface itself; only a route
    # with the G flag has a next hop (127 -> 127.0.0.1 UCS is the loopback interface address).
    gateway = _scoped_address(gateway_text) if "G" in flags else None
    if family is None:
        family = 6 if ":" in fields[0] or (gateway is not None and gateway.version == 6) else 4
    return Route(
        destination=_macos_destination(fields[0], family),
        gateway=gateway,
        interface=fields[netif],
        metric=None,
        source=SOURCE_MACOS_NETSTAT,
        flags=flags,
        raw=raw,
    )


def _scoped_address(text: str) -> IPAddress:
    # fe80::1%en0: the zone is the interface, which the Netif column already names.
    return ipaddress.ip_address(text.split("%", 1)[0])


def _macos_destination(text: str, family: int) -> IPNetwork:
    if text == "default":
        return ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
    address, slash, prefix = text.partition("/")
    if family == 6:
        plen = int(prefix) if slash else 128
        return ipaddress.IPv6Network((address.split("%", 1)[0], plen), strict=False)
    # netstat drops trailing zero octets and the mask when it is the one the octets imply:
    # 10.96/12 is 10.96.0.0/12, 10.244.1 is 10.244.1.0/24, 127 is 127.0.0.0/8, a full
    # dotted quad without a mask is a host route.
    octets = address.split(".")
    if not 1 <= len(octets) <= 4 or not all(o.isdigit() for o in octets):
        raise ValueError(f"not an IPv4 destination: {text!r}")
    plen = int(prefix) if slash else 8 * len(octets)
    padded = ".".join(octets + ["0"] * (4 - len(octets)))
    return ipaddress.IPv4Network((padded, plen), strict=False)


# --- Windows: `route print` --------------------------------------------------------------------

_V4 = r"\d{1,3}(?:\.\d{1,3}){3}"
# Rows are told apart by their shape, never by the headers: headers, "On-link", "Default" and
# "None" are translated on non-English Windows ("Auf Verbindung", "Standard", "Keine").
_WIN_V4_ACTIVE = re.compile(rf"^({_V4})\s+({_V4})\s+(\S.*?)\s+({_V4})\s+(\d+)$")
_WIN_V4_PERSISTENT = re.compile(rf"^({_V4})\s+({_V4})\s+({_V4})\s+(\S+)$")
_WIN_V6_ROW = re.compile(r"^(\d+)\s+(\d+)\s+([0-9A-Fa-f:.]+(?:%\w+)?/\d{1,3})(?:\s+(\S.*))?$")
_WIN_INTERFACE = re.compile(r"^\d+\.\.\.")
_WIN_SEPARATOR = re.compile(r"^=+$")


def parse_windows_route_print(text: str) -> list[Route]:
    """Return the routes in Windows `route print` output, active and persistent."""
    routes: list[Route] = []
    labels = 0  # "Active Routes:" then "Persistent Routes:" inside each family's block
    seen_table = False
    pending: tuple[re.Match[str], str] | None = None  # an IPv6 row whose gateway wrapped
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if pending is not None:
            row, first = pending
            pending = None
            if _is_wrapped_gateway(line, stripped):
                _append(routes, _win_v6_route, row, stripped, labels, f"{first} {stripped}")
                continue
            LOG.warning("skipping `route print` row without a gateway: %r", first)
        if _WIN_SEPARATOR.match(stripped) or _WIN_INTERFACE.match(stripped):
            continue
        if match := _WIN_V4_ACTIVE.match(stripped):
            _append(routes, _win_v4_active, match, stripped)
        elif match := _WIN_V4_PERSISTENT.match(stripped):
            _append(routes, _win_v4_persistent, match, stripped)
        elif match := _WIN_V6_ROW.match(stripped):
            if match.group(4) is None:
                pending = (match, stripped)
            else:
                _append(routes, _win_v6_route, match, match.group(4), labels, stripped)
        elif "IPv4" in stripped or "IPv6" in stripped:
            labels = 0
        elif stripped.endswith(":"):
            labels += 1
            continue
        else:
            continue  # headers, "None", the Interface List title
        seen_table = True
    if pending is not None:
        LOG.warning("skipping `route print` row without a gateway: %r", pending[1])
    if not seen_table:
        raise RouteReadError(
            "not `route print` output: no 'IPv4 Route Table' or 'IPv6 Route Table' section "
            "and no route rows found"
        )
    return routes


def _is_wrapped_gateway(line: str, stripped: str) -> bool:
    # A gateway too long for its row goes alone on the next, indented line.
    return (
        line[:1].isspace()
        and not _WIN_V6_ROW.match(stripped)
        and not _WIN_SEPARATOR.match(stripped)
        and not stripped.endswith(":")
    )


def _append(routes: list[Route], build: Callable[..., Route], *args: Any) -> None:
    try:
        routes.append(build(*args))
    except ValueError as exc:
        LOG.warning("skipping unreadable `route print` row: %s", exc)


def _win_gateway(text: str) -> IPAddress | None:
    try:
        gateway = _scoped_address(text)
    except ValueError:
        if re.search(r"[\d:]", text):
            raise ValueError(f"not a gateway: {text!r}") from None
        return None  # "On-link" in whatever language the system speaks
    return None if int(gateway) == 0 else gateway


def _win_v4_active(row: re.Match[str], raw: str) -> Route:
    destination, netmask, gateway, interface, metric = row.groups()
    return Route(
        destination=ipaddress.IPv4Network((destination, netmask), strict=False),
        gateway=_win_gateway(gateway),
        interface=interface,  # Windows names the interface by its IPv4 address here
        metric=int(metric),
        source=SOURCE_WINDOWS_ROUTE_PRINT,
        raw=raw,
    )


def _win_v4_persistent(row: re.Match[str], raw: str) -> Route:
    destination, netmask, gateway, metric = row.groups()
    return Route(
        destination=ipaddress.IPv4Network((destination, netmask), strict=False),
        gateway=_win_gateway(gateway),
        interface=None,
        metric=int(metric) if metric.isdigit() else None,  # "Default": the interface's metric
        source=SOURCE_WINDOWS_ROUTE_PRINT,
        persistent=True,
        raw=raw,
    )


def _win_v6_route(row: re.Match[str], gateway: str, labels: int, raw: str) -> Route:
    index, metric, destination = row.group(1), row.group(2), row.group(3)
    address, _, prefix = destination.partition("/")
    return Route(
        destination=ipaddress.IPv6Network((address.split("%", 1)[0], int(prefix)), False),
        gateway=_win_gateway(gateway),
        interface=index,  # the number from the Interface List
        metric=int(metric),
        source=SOURCE_WINDOWS_ROUTE_PRINT,
        persistent=labels >= 2,
        raw=raw,
    )


# --- this machine ------------------------------------------------------------------------------


def read_local_routes(
    timeout: float = COMMAND_TIMEOUT, platform: str = sys.platform
) -> list[Route]:
    """Return this machine's routing table, read the way its platform allows."""
    if platform.startswith("linux"):
        return read_linux_routes()
    if platform == "darwin":
        text = _run(["netstat", "-rn"], "/usr/sbin/netstat", timeout, platform)
        return parse_macos_netstat(text)
    if platform == "win32":
        system_root = os.environ.get("SystemRoot", "C:\\Windows")
        route_exe = ntpath.join(system_root, "System32", "ROUTE.EXE")
        return parse_windows_route_print(_run(["route", "print"], route_exe, timeout, platform))
    raise RouteReadError(
        f"reading the routing table is not supported on {platform!r} (Linux, macOS and Windows are)"
    )


def _run(argv: list[str], fallback: str, timeout: float, platform: str) -> str:
    # A GUI-started or sanitised environment may lack /usr/sbin or System32 on PATH.
    executable = shutil.which(argv[0]) or fallback
    command = " ".join(argv)
    LOG.debug("running %s (%s), timeout %.1f s", command, executable, timeout)
    try:
        done = subprocess.run(
            [executable, *argv[1:]], capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise RouteReadError(f"cannot run `{command}`: {executable} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise RouteReadError(
            f"`{command}` did not finish within {timeout:g} s; the routing table was not read"
        ) from exc
    except OSError as exc:
        raise RouteReadError(f"cannot run `{command}`: {exc.strerror or exc}") from exc
    encoding = _console_encoding(platform)
    if done.returncode != 0:
        message = done.stderr.decode(encoding, errors="replace").strip().splitlines()
        raise RouteReadError(
            f"`{command}` exited with status {done.returncode}: "
            f"{message[0] if message else 'no message'}"
        )
    return done.stdout.decode(encoding, errors="replace")


def _console_encoding(platform: str) -> str:
    # Console tools on Windows write in the OEM code page (the "oem" codec exists only on
    # Windows); the parsers need nothing beyond ASCII, so undecodable bytes are replaced.
    if platform == "win32":
        try:
            return codecs.lookup("oem").name
        except LookupError:
            pass
    return "utf-8"


# --- lookups -----------------------------------------------------------------------------------

# The stock Linux policy rules consult local, then main, then default; the first table with a
# match decides. Routes in any other table need an `ip rule` to be used and are left out (see
# the shortcoming in read_linux_routes). None is a table the source does not name.
_TABLE_ORDER = {"local": 0, "255": 0, None: 1, "main": 1, "254": 1, "default": 2, "253": 2}


def _eligible(route: Route, zone: str | None = None) -> bool:
    if route.persistent:
        # A Windows persistent entry is the registry copy; when it is in force the same route
        # is listed under Active Routes too, and when it is not (its gateway is unreachable)
        # it does not route anything.
        return False
    if route.source == SOURCE_MACOS_NETSTAT and route.flags and "I" in route.flags:
        # RTF_IFSCOPE: used only for traffic bound to that interface (a socket bound to it, or
        # a link-local address whose zone names it), not by a plain connect().
        return zone is not None and route.interface == zone
    return route.table in _TABLE_ORDER


def _best(
    routes: Iterable[Route], matches: Callable[[Route], bool], zone: str | None = None
) -> Route | None:
    candidates = [r for r in routes if _eligible(r, zone) and matches(r)]
    if not candidates:
        return None
    first_table = min(_TABLE_ORDER[r.table] for r in candidates)
    in_table = [r for r in candidates if _TABLE_ORDER[r.table] == first_table]
    # Longest prefix, then lowest metric; min() keeps the earlier entry on a tie, as the
    # kernels do (macOS lists its primary default route first).
    return min(in_table, key=lambda r: (-r.destination.prefixlen, r.metric or 0))


def lookup(routes: Iterable[Route], address: str | IPAddress) -> Route | None:
    """Return the route the kernel would pick for `address`, or None if no route matches."""
    target = ipaddress.ip_address(address)
    # fe80::1%en0: the zone names the interface (its index on Windows) the packet leaves by.
    zone = getattr(target, "scope_id", None)

    def matches(route: Route) -> bool:
        if route.destination.version != target.version or target not in route.destination:
            return False
        return zone is None or route.interface == zone

    return _best(routes, matches, zone)


def covering(routes: Iterable[Route], network: str | IPNetwork) -> Route | None:
    """Return the most specific route that holds the whole of `network`, or None."""
    net = ipaddress.ip_network(network, strict=False)
    return _best(routes, lambda r: _within(net, r.destination))


def inside(routes: Iterable[Route], network: str | IPNetwork) -> list[Route]:
    """Return the routes more specific than `network` that fall inside it, in address order."""
    net = ipaddress.ip_network(network, strict=False)
    found = [
        r
        for r in routes
        if _eligible(r) and r.destination.prefixlen > net.prefixlen and _within(r.destination, net)
    ]
    return sorted(found, key=lambda r: (r.destination.network_address, r.destination.prefixlen))


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    """True when `inner` lies wholly inside `outer` (never across address families)."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False
