"""Open one TCP connection and say how it ended: connected, refused, timed out, unreachable."""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

_UNREACHABLE = {errno.ENETUNREACH: "network", errno.EHOSTUNREACH: "host"}


@dataclass(frozen=True)
class TcpOutcome:
    """`kind`: connected, refused, timeout, unreachable, blocked or error."""

    address: str
    port: int
    kind: str
    latency_ms: float
    errno: str | None = None
    message: str | None = None
    local: str | None = None
    unreachable: str | None = None  # "network" or "host"


def connect(address: str, port: int, timeout: float) -> TcpOutcome:
    """Connect once with a timeout; close at once (nothing is sent)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    LOG.debug("probe: TCP connect %s:%d (timeout %.1f s)", address, port, timeout)
    start = time.monotonic()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except TimeoutError:
            return _log(
                TcpOutcome(
                    address,
                    port,
                    "timeout",
                    _ms(start),
                    "ETIMEDOUT",
                    f"no answer within {timeout:g} s",
                )
            )
        except OSError as exc:
            code = exc.errno or 0
            name = errno.errorcode.get(code, str(code))
            if code == errno.ECONNREFUSED:
                kind = "refused"
            elif code in _UNREACHABLE:
                return _log(
                    TcpOutcome(
                        address,
                        port,
                        "unreachable",
                        _ms(start),
                        name,
                        exc.strerror,
                        unreachable=_UNREACHABLE[code],
                    )
                )
            elif code == errno.ETIMEDOUT:
                kind = "timeout"
            elif code in (errno.EACCES, errno.EPERM):
                kind = "blocked"
            else:
                kind = "error"
            return _log(TcpOutcome(address, port, kind, _ms(start), name, exc.strerror))
        local = sock.getsockname()
        return _log(
            TcpOutcome(address, port, "connected", _ms(start), local=f"{local[0]}:{local[1]}")
        )
    finally:
        sock.close()


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def _log(outcome: TcpOutcome) -> TcpOutcome:
    LOG.debug("answer: %s %s in %.1f ms", outcome.kind, outcome.errno or "", outcome.latency_ms)
    return outcome
