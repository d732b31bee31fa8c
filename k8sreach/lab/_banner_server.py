"""Answer every TCP connection with one banner line: the lab's stand-in for mysqld.

Run as a script inside the pod's network namespace: ``_banner_server.py IP PORT BANNER``.
It prints ``ready`` once it listens, so the lab knows when the pod is up.
"""

from __future__ import annotations

import socket
import sys


def main() -> None:
    """Listen on IP:PORT and send BANNER plus a newline to each client, then close."""
    host, port, banner = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode() + b"\n"
    server = socket.create_server((host, port), backlog=128)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        try:
            conn.sendall(banner)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
