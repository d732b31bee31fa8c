"""Where do the packets stop? TTL-limited TCP SYN probes to the target port (needs root).

Each probe carries a TTL of 1, 2, 3 ...; the router where a probe's TTL runs out answers
with ICMP time exceeded, so the answers name the hops a SYN crosses, and the last one that
answered is where a silently dropped connection ends. scapy is imported here only, and only
when a connection already looks silent, so a healthy run never pays for it.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class HopAnswer:
    ttl: int
    sender: str | None  # None: no answer for this TTL
    kind: str  # "time-exceeded", "unreachable", "syn-ack", "reset", "none"


@dataclass(frozen=True)
class Trace:
    hops: tuple[HopAnswer, ...]
    reached_target: bool

    @property
    def last(self) -> HopAnswer | None:
        """The farthest hop that answered."""
        answered = [h for h in self.hops if h.sender is not None]
        return answered[-1] if answered else None


def available() -> str | None:
    """None when tracing can run here, else the reason it cannot."""
    if not sys.platform.startswith("linux"):
        return "localising where packets stop is implemented for Linux only"
    if os.geteuid() != 0:
        return "localising where packets stop needs root (raw TTL-limited SYN probes)"
    return None


def syn_trace(address: str, port: int, deadline: float, max_hops: int = 6) -> Trace:
    """Send one SYN per TTL at once and collect who answered until `deadline` (monotonic)."""
    # scapy warns on stderr about ARP; the kernel resolves next hops for us instead.
    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.sendrecv import sr
    from scapy.supersocket import L3RawSocket

    # Send through the kernel's raw IP socket: its routing table and neighbour cache pick
    # the next hop. scapy's own layer-2 path would ARP for it and stall for seconds when
    # the next hop does not answer (a route to nowhere is exactly what is diagnosed here).
    conf.L3socket = L3RawSocket

    # Importing scapy takes a good part of a second: wait only for what is left.
    timeout = max(0.1, deadline - time.monotonic())

    conf.verb = 0
    sport = random.randint(33000, 60999)
    probes = [
        IP(dst=address, ttl=ttl, id=random.randint(1, 65535))
        / TCP(sport=sport + ttl, dport=port, flags="S", seq=random.randint(0, 2**32 - 1))
        for ttl in range(1, max_hops + 1)
    ]
    LOG.debug("probe: TTL-limited SYNs to %s:%d, TTL 1..%d", address, port, max_hops)
    answered, _unanswered = sr(probes, timeout=timeout, verbose=0)
    by_ttl: dict[int, HopAnswer] = {}
    reached = False
    for sent, received in answered:
        ttl = sent[IP].ttl
        if received.haslayer(ICMP):
            icmp = received[ICMP]
            kind = "time-exceeded" if icmp.type == 11 else "unreachable"
        elif received.haslayer(TCP):
            flags = int(received[TCP].flags)
            kind = "syn-ack" if flags & 0x12 == 0x12 else "reset"
            reached = True
        else:
            continue
        by_ttl[ttl] = HopAnswer(ttl, received[IP].src, kind)
    hops = []
    for ttl in range(1, max_hops + 1):
        hops.append(by_ttl.get(ttl, HopAnswer(ttl, None, "none")))
        if ttl in by_ttl and by_ttl[ttl].kind in ("syn-ack", "reset"):
            break
    while hops and hops[-1].sender is None and len(hops) > 1 and hops[-2].sender is None:
        hops.pop()
    LOG.debug("answer: %s", ", ".join(f"{h.ttl}:{h.sender or '*'}" for h in hops))
    return Trace(tuple(hops), reached)
