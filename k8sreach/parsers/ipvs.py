"""Parser for `ipvsadm -Ln` (kube-proxy's IPVS mode) and a virtual-service lookup."""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

from k8sreach.parsers.errors import ParseError

LOG = logging.getLogger(__name__)

_VERSION = re.compile(r"^IP Virtual Server version (\S+)")
_SERVICE = re.compile(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(?:\s+(.*))?$")
_REAL = re.compile(r"^\s*->\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")
_HEADINGS = ("Prot LocalAddress:Port", "-> RemoteAddress:Port")


@dataclass(frozen=True)
class RealServer:
    """A real server (endpoint) of a virtual service."""

    address: str  # "10.244.1.10" (IPv6 without brackets)
    port: int
    forward: str  # "Masq", "Route", "Tunnel", "Local"
    weight: int
    active: int
    inactive: int
    line: str

    @property
    def endpoint(self) -> str:
        """Return "ip:port" ("[ip]:port" for IPv6)."""
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


@dataclass(frozen=True)
class VirtualService:
    """A virtual service line and its real servers."""

    protocol: str  # "TCP", "UDP", "SCTP", "FWM"
    address: str  # "" for FWM services
    port: int | None
    fwmark: int | None
    scheduler: str  # "rr", "wrr", "lc", ...
    flags: tuple[str, ...]  # the rest: ("persistent", "10800") or ("ops",) ...
    persistent: int | None  # persistence timeout in seconds, None if not persistent
    real_servers: tuple[RealServer, ...]
    line: str


@dataclass(frozen=True)
class IpvsTable:
    """All virtual services of `ipvsadm -Ln`."""

    version: str | None
    services: tuple[VirtualService, ...]


def _split_host_port(text: str) -> tuple[str, int]:
    """Split "10.0.0.1:80" or "[fd00::1]:80" into (address, port)."""
    match = re.match(r"^\[([^\]]+)\]:(\d+)$", text) or re.match(r"^([^:]+):(\d+)$", text)
    if not match:
        raise ValueError(text)
    return match.group(1), int(match.group(2))


def parse_ipvsadm(text: str) -> IpvsTable:
    """Return the virtual services of `ipvsadm -Ln` output."""
    version: str | None = None
    services: list[dict] = []
    seen_header = False
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if match := _VERSION.match(line):
            version, seen_header = match.group(1), True
            continue
        if line.strip().startswith(_HEADINGS):
            seen_header = True
            continue
        if match := _REAL.match(line):
            if not services:
                raise ParseError("real server line before any virtual service", line_no, raw)
            try:
                address, port = _split_host_port(match.group(1))
            except ValueError:
                raise ParseError("malformed real server address", line_no, raw) from None
            services[-1]["real"].append(
                RealServer(
                    address,
                    port,
                    match.group(2),
                    int(match.group(3)),
                    int(match.group(4)),
                    int(match.group(5)),
                    line,
                )
            )
            continue
        if match := _SERVICE.match(line):
            protocol, where, scheduler, rest = match.groups()
            flags = tuple((rest or "").split())
            address = ""
            service_port: int | None = None
            fwmark: int | None = None
            try:
                if protocol == "FWM":
                    fwmark = int(where, 0)
                else:
                    address, service_port = _split_host_port(where)
            except ValueError:
                raise ParseError("malformed virtual service address", line_no, raw) from None
            persistent = None
            if "persistent" in flags:
                position = flags.index("persistent")
                if position + 1 < len(flags) and flags[position + 1].isdigit():
                    persistent = int(flags[position + 1])
            services.append(
                {
                    "head": (
                        protocol,
                        address,
                        service_port,
                        fwmark,
                        scheduler,
                        flags,
                        persistent,
                        line,
                    ),
                    "real": [],
                }
            )
            continue
        if not seen_header and not services:
            # e.g. "Can't initialize ipvs: Protocol not available" (no IPVS in the kernel)
            raise ParseError("not `ipvsadm -Ln` output", line_no, raw)
        LOG.warning("skipping unexpected ipvsadm line %d: %r", line_no, raw)
    built = []
    for service in services:
        protocol, address, port, fwmark, scheduler, flags, persistent, line = service["head"]
        built.append(
            VirtualService(
                protocol,
                address,
                port,
                fwmark,
                scheduler,
                flags,
                persistent,
                tuple(service["real"]),
                line,
            )
        )
    if not seen_header and not built:
        raise ParseError("not `ipvsadm -Ln` output (empty)")
    return IpvsTable(version, tuple(built))


def ipvs_service(
    parsed: IpvsTable, ip: str, port: int, proto: str = "tcp"
) -> VirtualService | None:
    """Return the virtual service for ip:port/proto, None if IPVS has none."""
    wanted = ipaddress.ip_address(ip)
    for service in parsed.services:
        if service.protocol.lower() != proto.lower() or service.port != port:
            continue
        try:
            if ipaddress.ip_address(service.address) == wanted:
                return service
        except ValueError:
            continue
    return None
