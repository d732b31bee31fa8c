"""A scriptable DNS server on loopback for unit tests: each query gets what `answer` returns."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class LoopbackDns:
    """UDP server on 127.0.0.1; `answer(query_bytes)` returns a list of datagrams to send."""

    def __init__(self, answer: Callable[[bytes], list[bytes]]) -> None:
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries.append(data)
            for reply in self.answer(data):
                self.sock.sendto(reply, peer)

    def __enter__(self) -> LoopbackDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def reply(
    query: bytes, *, rcode: int = 0, records: list[str] = (), aa: bool = True, tc: bool = False
) -> bytes:
    """A reply to `query` with zone-file style answer records ('name 5 IN A 1.2.3.4')."""
    import dns.flags
    import dns.message
    import dns.rrset

    q = dns.message.from_wire(query)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if aa:
        r.flags |= dns.flags.AA
    if tc:
        r.flags |= dns.flags.TC
    for text in records:
        name, ttl, cls, rtype, *data = text.split()
        r.answer.append(dns.rrset.from_text(name, int(ttl), cls, rtype, " ".join(data)))
    return r.to_wire()
