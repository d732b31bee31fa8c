"""Ask one DNS server one question, over a connected UDP socket or over TCP, and say what
came back.

A connected socket matters: it is how an ICMP port unreachable (nothing listens on 53)
reaches us as ECONNREFUSED instead of looking like a timeout. Replies that do not match
the question (wrong id, wrong name, garbage) are counted and ignored, as a resolver would,
over TCP as over UDP.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from dataclasses import dataclass, field, replace
from typing import Any

LOG = logging.getLogger(__name__)
# CNAMEs followed from the asked name before the chain counts as one that does not end
MAX_CNAME_HOPS = 8
_MAX_ANSWERS = 64
# A TCP stream that keeps sending messages that do not match is cut off after this many.
_MAX_TCP_MESSAGES = 64


@dataclass(frozen=True)
class DnsOutcome:
    """What one query got. `kind` is answer, timeout, port-unreachable (UDP: ICMP port
    unreachable; TCP: connection refused), unreachable or error. `records` holds the answer's
    records of the asked type other than addresses (SRV, TXT) as zone-file text."""

    server: str
    port: int
    qname: str
    qtype: str
    transport: str
    kind: str
    rcode: str | None = None
    flags: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()
    latency_ms: float | None = None
    ignored_replies: int = 0
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    records: tuple[str, ...] = ()
    cname_loop: bool = False  # the CNAME chain loops or is longer than MAX_CNAME_HOPS
    udp_truncated: bool = False  # a TCP outcome asked because the UDP answer had TC set

    @property
    def authoritative(self) -> bool:
        return "AA" in self.flags

    @property
    def truncated(self) -> bool:
        return "TC" in self.flags

    @property
    def recursion_available(self) -> bool:
        return "RA" in self.flags


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _flag_names(flags: int) -> tuple[str, ...]:
    import dns.flags

    return tuple(sorted(dns.flags.to_text(flags).split()))


@dataclass(frozen=True)
class _Chain:
    """The addresses of the asked type at the end of qname's CNAME chain, and what was
    left aside on the way."""

    addresses: tuple[str, ...]
    cnames: tuple[str, ...]
    notes: tuple[str, ...]
    unending: bool


def _addresses(response: object, qname: str, qtype: str) -> _Chain:
    """Follow the CNAME chain from qname and take the addresses of the asked type only."""
    import dns.name
    import dns.rdatatype

    address_types = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA}
    wanted = address_types.get(qtype)
    notes: list[str] = []
    start = dns.name.from_text(qname)
    current = start
    seen = {start}
    chain: list[str] = []
    addresses: list[str] = []
    other_types: dict[str, int] = {}
    unending = False
    answer = list(getattr(response, "answer", []))
    while True:
        step = None
        for rrset in answer:
            if rrset.name != current:
                continue
            if wanted is not None and rrset.rdtype == wanted:
                addresses.extend(r.address for r in rrset)
            elif wanted is not None and rrset.rdtype in address_types.values():
                # an AAAA record is no answer to an A question, whoever put it there
                kind = dns.rdatatype.to_text(rrset.rdtype)
                other_types[kind] = other_types.get(kind, 0) + len(rrset)
            elif rrset.rdtype == dns.rdatatype.CNAME and step is None:
                step = next(iter(rrset)).target
        if addresses or step is None:
            break
        if step in seen:
            unending = True
            notes.append(
                f"CNAME loop: {current.to_text()} points back to {step.to_text()}; stopped "
                "following it"
            )
            break
        if len(chain) >= MAX_CNAME_HOPS:
            unending = True
            notes.append(f"CNAME chain longer than {MAX_CNAME_HOPS}; stopped following it")
            break
        chain.append(step.to_text())
        seen.add(step)
        current = step
    for kind, count in sorted(other_types.items()):
        notes.append(f"{count} {kind} record(s) in the answer to an {qtype} query were ignored")
    unrelated = sum(1 for rrset in answer if rrset.name not in seen)
    if unrelated:
        notes.append(f"{unrelated} answer record set(s) for other names were ignored")
    if len(addresses) > _MAX_ANSWERS:
        notes.append(f"{len(addresses)} addresses; only the first {_MAX_ANSWERS} are kept")
    return _Chain(tuple(addresses[:_MAX_ANSWERS]), tuple(chain), tuple(notes), unending)


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def query(server: str, port: int, qname: str, qtype: str = "A", timeout: float = 2.0) -> DnsOutcome:
    """Send one query over UDP (retrying over TCP when truncated) and classify what came back."""
    import dns.exception
    import dns.message

    q = dns.message.make_query(qname, qtype)
    wire = q.to_wire()
    base: dict[str, Any] = {"server": server, "port": port, "qname": qname, "qtype": qtype}
    start = time.monotonic()
    deadline = start + timeout
    ignored = 0
    LOG.debug(
        "probe: DNS %s %s? -> %s:%d over UDP (timeout %.1f s)", qtype, qname, server, port, timeout
    )
    try:
        sock = socket.socket(_family(server), socket.SOCK_DGRAM)
    except OSError as exc:
        return DnsOutcome(**base, transport="udp", kind="error", error=str(exc))
    with sock:
        try:
            sock.connect((server, port))
            sock.send(wire)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                data = sock.recv(65535)
                response = _reply_to(q, data)
                if response is None:
                    ignored += 1
                    continue
                break
        except TimeoutError:
            LOG.debug("answer: none within %.1f s", timeout)
            return DnsOutcome(
                **base,
                transport="udp",
                kind="timeout",
                latency_ms=round(timeout * 1000, 1),
                ignored_replies=ignored,
            )
        except ConnectionRefusedError:
            LOG.debug("answer: ICMP port unreachable (nothing listens on %s:%d)", server, port)
            return DnsOutcome(
                **base,
                transport="udp",
                kind="port-unreachable",
                latency_ms=_ms(start),
                error="ECONNREFUSED",
                ignored_replies=ignored,
            )
        except OSError as exc:
            kind = (
                "unreachable" if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else "error"
            )
            LOG.debug("answer: %s", exc)
            return DnsOutcome(
                **base,
                transport="udp",
                kind=kind,
                latency_ms=_ms(start),
                error=_errno_name(exc),
                ignored_replies=ignored,
            )

    import dns.flags

    if response.flags & dns.flags.TC:
        note = "the UDP answer was truncated (TC); asked again over TCP"
        tcp = query_tcp(server, port, qname, qtype, max(0.05, deadline - time.monotonic()))
        # the latency is the whole exchange's, UDP included
        return replace(tcp, latency_ms=_ms(start), notes=(note, *tcp.notes), udp_truncated=True)
    return _answer(response, base, "udp", start, ignored)


def _answer(
    response: Any, base: dict[str, Any], transport: str, start: float, ignored: int
) -> DnsOutcome:
    """Return the outcome of a reply that matched the question."""
    import dns.rcode

    qname, qtype = str(base["qname"]), str(base["qtype"])
    chain = _addresses(response, qname, qtype)
    outcome = DnsOutcome(
        **base,
        transport=transport,
        kind="answer",
        rcode=dns.rcode.to_text(response.rcode()),
        flags=_flag_names(response.flags),
        addresses=chain.addresses,
        cnames=chain.cnames,
        latency_ms=_ms(start),
        ignored_replies=ignored,
        notes=chain.notes,
        records=_records(response, qname, qtype),
        cname_loop=chain.unending,
    )
    LOG.debug(
        "answer: %s %s %s flags=%s in %.1f ms over %s",
        outcome.rcode,
        list(outcome.addresses),
        list(outcome.records),
        " ".join(outcome.flags),
        outcome.latency_ms or 0,
        transport.upper(),
    )
    return outcome


def _records(response: object, qname: str, qtype: str) -> tuple[str, ...]:
    """Return the answer's records of type qtype for qname (not A/AAAA) as text."""
    import dns.name
    import dns.rdatatype

    if qtype in ("A", "AAAA"):
        return ()
    name, rdtype = dns.name.from_text(qname), dns.rdatatype.from_text(qtype)
    found = [
        r.to_text()
        for rrset in getattr(response, "answer", [])
        if rrset.name == name and rrset.rdtype == rdtype
        for r in rrset
    ]
    return tuple(found[:_MAX_ANSWERS])


def query_tcp(
    server: str, port: int, qname: str, qtype: str = "A", timeout: float = 2.0
) -> DnsOutcome:
    """Send one query over TCP and classify what came back; kind port-unreachable means the
    connection was refused (a reset, or an ICMP reject on the way)."""
    import dns.exception
    import dns.message

    q = dns.message.make_query(qname, qtype)
    wire = q.to_wire()
    base: dict[str, Any] = {"server": server, "port": port, "qname": qname, "qtype": qtype}
    start = time.monotonic()
    deadline = start + timeout
    ignored = 0
    LOG.debug(
        "probe: DNS %s %s? -> %s:%d over TCP (timeout %.1f s)", qtype, qname, server, port, timeout
    )

    def failure(kind: str, error: str | None = None) -> DnsOutcome:
        latency = round(timeout * 1000, 1) if kind == "timeout" else _ms(start)
        LOG.debug("answer: %s over TCP (%s)", kind, error or "no error")
        return DnsOutcome(
            **base,
            transport="tcp",
            kind=kind,
            latency_ms=latency,
            error=error,
            ignored_replies=ignored,
        )

    try:
        sock = socket.socket(_family(server), socket.SOCK_STREAM)
    except OSError as exc:
        return failure("error", str(exc))
    with sock:
        try:
            sock.settimeout(timeout)
            sock.connect((server, port))
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            for _ in range(_MAX_TCP_MESSAGES):
                data = _read_message(sock, deadline)
                if data is None:
                    return failure("error", "the server closed the connection without an answer")
                response = _reply_to(q, data)
                if response is None:
                    ignored += 1
                    continue
                return _answer(response, base, "tcp", start, ignored)
            return failure("error", f"{ignored} messages over TCP, none an answer to the query")
        except TimeoutError:
            return failure("timeout")
        except ConnectionRefusedError:
            return failure("port-unreachable", "ECONNREFUSED")
        except OSError as exc:
            kind = (
                "unreachable" if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else "error"
            )
            return failure(kind, _errno_name(exc))


def _read_message(sock: socket.socket, deadline: float) -> bytes | None:
    """Return one length-prefixed DNS message from a TCP stream; None when the peer closed it."""
    head = _read_exactly(sock, 2, deadline)
    if head is None:
        return None
    (length,) = struct.unpack("!H", head)
    return _read_exactly(sock, length, deadline)


def _read_exactly(sock: socket.socket, count: int, deadline: float) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        data = sock.recv(count - len(chunks))
        if not data:
            return None
        chunks += data
    return bytes(chunks)


def _reply_to(q: Any, data: bytes) -> Any:
    """The message in `data` if it answers `q`; None for garbage or another question's reply."""
    import dns.exception
    import dns.message

    try:
        response = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError, struct.error):
        LOG.debug("answer: %d bytes that are not a DNS message; ignored", len(data))
        return None
    if not q.is_response(response):
        LOG.debug("answer: a reply that does not match the question; ignored")
        return None
    return response


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def system_nameservers() -> list[str]:
    """The resolvers this machine is configured with (resolv.conf, or Windows' registry)."""
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration:
        return []
    except OSError:
        return []
    return [str(ns) for ns in resolver.nameservers]
