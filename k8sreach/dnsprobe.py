"""Ask one DNS server one question, over a connected UDP socket, and say what came back.

A connected socket matters: it is how an ICMP port unreachable (nothing listens on 53)
reaches us as ECONNREFUSED instead of looking like a timeout. Replies that do not match
the question (wrong id, wrong name, garbage) are counted and ignored, as a resolver would.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)
_MAX_CNAME_HOPS = 8
_MAX_ANSWERS = 64


@dataclass(frozen=True)
class DnsOutcome:
    """What one query got. `kind` is answer, timeout, port-unreachable, unreachable or error."""

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

    @property
    def authoritative(self) -> bool:
        return "AA" in self.flags


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _flag_names(flags: int) -> tuple[str, ...]:
    import dns.flags

    return tuple(sorted(dns.flags.to_text(flags).split()))


def _addresses(response: object, qname: str) -> tuple[list[str], list[str], list[str]]:
    """Follow the CNAME chain from qname; return addresses, the chain, and notes."""
    import dns.name
    import dns.rdatatype

    notes: list[str] = []
    current = dns.name.from_text(qname)
    chain: list[str] = []
    addresses: list[str] = []
    answer = list(getattr(response, "answer", []))
    for _ in range(_MAX_CNAME_HOPS + 1):
        step = None
        for rrset in answer:
            if rrset.name != current:
                continue
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses.extend(r.address for r in rrset)
            elif rrset.rdtype == dns.rdatatype.CNAME and step is None:
                step = next(iter(rrset)).target
        if addresses or step is None:
            break
        chain.append(step.to_text())
        current = step
    else:
        notes.append(f"CNAME chain longer than {_MAX_CNAME_HOPS}; stopped following it")
    unrelated = sum(
        1
        for rrset in answer
        if rrset.name != dns.name.from_text(qname) and rrset.name.to_text() not in chain
    )
    if unrelated:
        notes.append(f"{unrelated} answer record set(s) for other names were ignored")
    if len(addresses) > _MAX_ANSWERS:
        notes.append(f"{len(addresses)} addresses; only the first {_MAX_ANSWERS} are kept")
    return addresses[:_MAX_ANSWERS], chain, notes


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def query(server: str, port: int, qname: str, qtype: str = "A", timeout: float = 2.0) -> DnsOutcome:
    """Send one query over UDP (retrying over TCP when truncated) and classify what came back."""
    import dns.exception
    import dns.message
    import dns.rcode

    q = dns.message.make_query(qname, qtype)
    wire = q.to_wire()
    base = {"server": server, "port": port, "qname": qname, "qtype": qtype}
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
                try:
                    response = dns.message.from_wire(data)
                except (dns.exception.DNSException, ValueError, struct.error):
                    ignored += 1
                    LOG.debug("answer: %d bytes that are not a DNS message; ignored", len(data))
                    continue
                if not q.is_response(response):
                    ignored += 1
                    LOG.debug("answer: a reply that does not match the question; ignored")
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

    transport = "udp"
    notes: list[str] = []
    import dns.flags

    if response.flags & dns.flags.TC:
        notes.append("the UDP answer was truncated (TC); asked again over TCP")
        tcp = _query_tcp(q, server, port, max(0.05, deadline - time.monotonic()))
        if isinstance(tcp, DnsOutcome):
            return DnsOutcome(**{**tcp.__dict__, "notes": tuple(notes)})
        response, transport = tcp, "tcp"

    addresses, chain, more = _addresses(response, qname)
    outcome = DnsOutcome(
        **base,
        transport=transport,
        kind="answer",
        rcode=dns.rcode.to_text(response.rcode()),
        flags=_flag_names(response.flags),
        addresses=tuple(addresses),
        cnames=tuple(chain),
        latency_ms=_ms(start),
        ignored_replies=ignored,
        notes=tuple(notes + more),
    )
    LOG.debug(
        "answer: %s %s flags=%s in %.1f ms",
        outcome.rcode,
        list(outcome.addresses),
        " ".join(outcome.flags),
        outcome.latency_ms or 0,
    )
    return outcome


def _query_tcp(q: object, server: str, port: int, timeout: float) -> object:
    import dns.exception
    import dns.query

    base = {
        "server": server,
        "port": port,
        "qname": q.question[0].name.to_text(),  # type: ignore[attr-defined]
        "qtype": "A",
        "transport": "tcp",
    }
    start = time.monotonic()
    try:
        return dns.query.tcp(q, server, timeout=timeout, port=port)  # type: ignore[arg-type]
    except (dns.exception.Timeout, TimeoutError):
        return DnsOutcome(**base, kind="timeout", latency_ms=round(timeout * 1000, 1))
    except ConnectionRefusedError:
        return DnsOutcome(
            **base, kind="port-unreachable", latency_ms=_ms(start), error="ECONNREFUSED"
        )
    except (OSError, dns.exception.DNSException, EOFError) as exc:
        return DnsOutcome(**base, kind="error", latency_ms=_ms(start), error=str(exc))


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
