"""Open one TCP connection and say how it ended, and who answered.

On Linux the socket's error queue (IP_RECVERR) reports the ICMP error that ended a
connection attempt together with the address that sent it, without root: that is how a
REJECT by the gateway (ICMP port unreachable from 192.168.77.1) is told from a reset by
the pod (a TCP RST, no ICMP), and how "host unreachable" names the router that said so.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

_UNREACHABLE = {errno.ENETUNREACH: "network", errno.EHOSTUNREACH: "host"}
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3

# ICMP destination-unreachable codes (RFC 792, RFC 1812) and ICMPv6 ones (RFC 4443).
ICMP_UNREACH = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    5: "source route failed",
    6: "destination network unknown",
    7: "destination host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    11: "network unreachable for TOS",
    12: "host unreachable for TOS",
    13: "communication administratively prohibited",
}
ICMP6_UNREACH = {
    0: "no route to destination",
    1: "communication administratively prohibited",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed policy",
    6: "reject route to destination",
}


@dataclass(frozen=True)
class IcmpReport:
    """An ICMP error the kernel queued for the socket: who sent it and what it said."""

    sender: str
    type: int
    code: int
    meaning: str
    errno: str

    @property
    def prohibited(self) -> bool:
        return "prohibited" in self.meaning or "policy" in self.meaning

    @property
    def port_unreachable(self) -> bool:
        return self.meaning == "port unreachable"


@dataclass(frozen=True)
class TcpOutcome:
    """`kind`: connected, reset, rejected, timeout, unreachable, blocked or error.

    reset: a TCP RST (the target refused: nothing listens there); rejected: an ICMP error
    refused the connection on the way (e.g. kube-proxy's REJECT on the gateway).
    """

    address: str
    port: int
    kind: str
    latency_ms: float
    errno: str | None = None
    message: str | None = None
    local: str | None = None
    unreachable: str | None = None  # "network" or "host"
    icmp: IcmpReport | None = None
    sender_known: bool = False  # True when the error queue could be read (Linux)


def _enable_recverr(sock: socket.socket, family: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.SOL_IP, _IP_RECVERR, 1)
        return True
    except OSError:
        return False


def _read_icmp(sock: socket.socket) -> IcmpReport | None:
    """The first ICMP error in the socket's error queue, or None."""
    try:
        _data, ancillary, _flags, _addr = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return None
    for _level, _type, data in ancillary:
        if len(data) < 16:
            continue
        ee_errno, origin, icmp_type, code, _pad, _info, _data_field = struct.unpack(
            "IBBBBII", data[:16]
        )
        if origin not in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6):
            continue
        offender = data[16:]
        sender = "?"
        if origin == _SO_EE_ORIGIN_ICMP and len(offender) >= 8:
            sender = socket.inet_ntop(socket.AF_INET, offender[4:8])
            meaning = (
                ICMP_UNREACH.get(code, f"code {code}")
                if icmp_type == 3
                else f"ICMP type {icmp_type} code {code}"
            )
        else:
            if len(offender) >= 24:
                sender = socket.inet_ntop(socket.AF_INET6, offender[8:24])
            meaning = (
                ICMP6_UNREACH.get(code, f"code {code}")
                if icmp_type == 1
                else f"ICMPv6 type {icmp_type} code {code}"
            )
        return IcmpReport(
            sender, icmp_type, code, meaning, errno.errorcode.get(ee_errno, str(ee_errno))
        )
    return None


def connect(address: str, port: int, timeout: float) -> TcpOutcome:
    """Connect once with a timeout; close at once (nothing is sent)."""
    try:
        # Only literal addresses: socket.connect would quietly resolve a name with the
        # system resolver, and the address may come from a hostile answer.
        ipaddress.ip_address(address)
    except ValueError:
        return TcpOutcome(
            address,
            port,
            "error",
            0.0,
            "EINVAL",
            "not an IP address; k8sreach never resolves names here",
        )
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    LOG.debug("probe: TCP connect %s:%d (timeout %.1f s)", address, port, timeout)
    start = time.monotonic()
    deadline = start + timeout
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        recverr = _enable_recverr(sock, family)
        sock.setblocking(False)
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            return _log(_failure(address, port, code, start, None, recverr))
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR)
        while code != 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return _log(
                    TcpOutcome(
                        address,
                        port,
                        "timeout",
                        _ms(start),
                        "ETIMEDOUT",
                        f"no answer within {timeout:g} s",
                        sender_known=recverr,
                    )
                )
            if not poller.poll(max(1, int(left * 1000))):
                continue
            icmp = _read_icmp(sock) if recverr else None
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return _log(_failure(address, port, err, start, icmp, recverr))
            if icmp is not None:
                # A soft error: the kernel would go on retrying the SYN until its own
                # timeout, but a router already said where the path ends.
                return _log(_icmp_failure(address, port, start, icmp, recverr))
            try:
                sock.getpeername()
                code = 0
            except OSError:
                continue
        local = sock.getsockname()
        return _log(
            TcpOutcome(
                address,
                port,
                "connected",
                _ms(start),
                local=f"{local[0]}:{local[1]}",
                sender_known=recverr,
            )
        )
    finally:
        sock.close()


def _icmp_failure(
    address: str, port: int, start: float, icmp: IcmpReport, recverr: bool
) -> TcpOutcome:
    if icmp.port_unreachable or icmp.prohibited:
        return TcpOutcome(
            address,
            port,
            "rejected",
            _ms(start),
            icmp.errno,
            icmp.meaning,
            icmp=icmp,
            sender_known=recverr,
        )
    which = "network" if "network" in icmp.meaning or "route" in icmp.meaning else "host"
    return TcpOutcome(
        address,
        port,
        "unreachable",
        _ms(start),
        icmp.errno,
        icmp.meaning,
        unreachable=which,
        icmp=icmp,
        sender_known=recverr,
    )


def _failure(
    address: str, port: int, code: int, start: float, icmp: IcmpReport | None, recverr: bool
) -> TcpOutcome:
    name = errno.errorcode.get(code, str(code))
    message = os.strerror(code)
    if icmp is not None:
        return _icmp_failure(address, port, start, icmp, recverr)
    if code == errno.ECONNREFUSED:
        # No ICMP in the error queue: the refusal was a TCP reset.
        kind = "reset" if recverr else "refused"
        return TcpOutcome(address, port, kind, _ms(start), name, message, sender_known=recverr)
    if code in _UNREACHABLE:
        return TcpOutcome(
            address,
            port,
            "unreachable",
            _ms(start),
            name,
            message,
            unreachable=_UNREACHABLE[code],
            sender_known=recverr,
        )
    if code == errno.ETIMEDOUT:
        return TcpOutcome(address, port, "timeout", _ms(start), name, message, sender_known=recverr)
    if code in (errno.EACCES, errno.EPERM):
        return TcpOutcome(address, port, "blocked", _ms(start), name, message, sender_known=recverr)
    return TcpOutcome(address, port, "error", _ms(start), name, message, sender_known=recverr)


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def _log(outcome: TcpOutcome) -> TcpOutcome:
    by = f" from {outcome.icmp.sender} ({outcome.icmp.meaning})" if outcome.icmp else ""
    LOG.debug(
        "answer: %s %s%s in %.1f ms", outcome.kind, outcome.errno or "", by, outcome.latency_ms
    )
    return outcome
