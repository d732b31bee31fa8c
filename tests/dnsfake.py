"""A scriptable DNS server on loopback for unit tests: each query gets what `answer` returns."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

Answer = Callable[[bytes], list[bytes]]


class LoopbackDns:
    """UDP and TCP server on one 127.0.0.1 port; `answer(query_bytes)` returns the messages
    to send (datagrams over UDP, length-prefixed over TCP).

    `tcp` answers TCP queries instead of `answer`; tcp=False leaves the TCP port closed (a
    connection is refused), as for a server that answers over UDP only. A TCP answer function
    returning [] keeps the connection open and silent; returning None closes it unanswered.
    """

    def __init__(self, answer: Answer, tcp: Answer | bool = True) -> None:
        self.answer = answer
        self.tcp_answer: Answer | None = (
            answer if tcp is True else None if tcp is False else tcp  # type: ignore[assignment]
        )
        self.queries: list[bytes] = []
        self.tcp_queries: list[bytes] = []
        self.sock, self.tcp_sock = self._bind()
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        if self.tcp_sock is not None:
            self._threads.append(threading.Thread(target=self._serve_tcp, daemon=True))

    def _bind(self) -> tuple[socket.socket, socket.socket | None]:
        # the TCP listener must share the UDP port, which the kernel picked: retry on a clash
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(0.2)
            if self.tcp_answer is None:
                return udp, None
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            tcp.settimeout(0.2)
            return udp, tcp
        raise OSError("no loopback port free for both UDP and TCP")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries.append(data)
            for reply_bytes in self.answer(data):
                self.sock.sendto(reply_bytes, peer)

    def _serve_tcp(self) -> None:
        assert self.tcp_sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp_sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer_tcp, args=(conn,), daemon=True).start()

    def _answer_tcp(self, conn: socket.socket) -> None:
        assert self.tcp_answer is not None
        with conn:
            conn.settimeout(2)
            try:
                head = _recv_exactly(conn, 2)
                data = _recv_exactly(conn, struct.unpack("!H", head)[0])
            except OSError:
                return
            self.tcp_queries.append(data)
            replies = self.tcp_answer(data)
            if replies is None:
                return
            if not replies:
                self._stop.wait(5)  # hold the connection open, answering nothing
                return
            for reply_bytes in replies:
                conn.sendall(struct.pack("!H", len(reply_bytes)) + reply_bytes)
            self._stop.wait(0.5)  # let the client read before the close

    def __enter__(self) -> LoopbackDns:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sock.close()
        if self.tcp_sock is not None:
            self.tcp_sock.close()


def _recv_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def reply(
    query: bytes,
    *,
    rcode: int = 0,
    records: list[str] = (),
    aa: bool = True,
    tc: bool = False,
    ra: bool = False,
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
    if ra:
        r.flags |= dns.flags.RA
    for text in records:
        name, ttl, cls, rtype, *data = text.split()
        r.answer.append(dns.rrset.from_text(name, int(ttl), cls, rtype, " ".join(data)))
    return r.to_wire()


def question(query: bytes) -> tuple[str, str]:
    """Return (name, type) of a query, e.g. ('mysql-read.default.svc.cluster.local.', 'A')."""
    import dns.message
    import dns.rdatatype

    q = dns.message.from_wire(query).question[0]
    return q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
