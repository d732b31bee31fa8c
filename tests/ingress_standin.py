"""Test stand-ins: an HTTP server that routes like an ingress controller, and a backend.

This is a stand-in, not ingress-nginx. It mimics only what k8sreach looks at: the request is
routed by its Host header and path (Exact, Prefix by whole segments, ImplementationSpecific as
a string prefix; the longest path wins); no route gives a 404 page like nginx's own, a route
whose backend list is empty gives nginx's 503 page (ingress-nginx's answer for a Service with
no endpoints), and a backend that refuses gives 502. Every response carries `Server: nginx`,
as ingress-nginx's do. The standard library only, so it runs anywhere, also in a lab netns:

    python tests/ingress_standin.py controller --listen IP:PORT --routes routes.json
    python tests/ingress_standin.py backend --listen IP:PORT --name NAME

routes.json: [{"host": "shop.example.test" or null, "path": "/app", "pathType": "Prefix",
"backends": ["10.244.1.10:8080"]}, ...]. Each prints "ready" once it listens, and stops on
SIGTERM or after --max-seconds. The backend answers 200 with its name and the path, and
/status/NNN with that status.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import signal
import socketserver
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_PROXY_TIMEOUT = 2.0
_REASONS = {
    404: "Not Found",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def nginx_page(code: int) -> bytes:
    """Return an error page in the shape nginx generates for its own errors."""
    title = f"{code} {_REASONS.get(code, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}"
        "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def _serves(route: Mapping[str, Any], path: str) -> bool:
    rule = str(route.get("path") or "/")
    kind = route.get("pathType") or "Prefix"
    if kind == "Exact":
        return path == rule
    if kind == "Prefix":
        base = rule.rstrip("/")
        return path == base or path.startswith(base + "/") or not base
    return path.startswith(rule)


def pick(routes: Sequence[Mapping[str, Any]], host: str, path: str) -> Mapping[str, Any] | None:
    """Return the route for a request: its host's routes (else those without host), the
    longest serving path."""
    own = [r for r in routes if (r.get("host") or "").lower() == host]
    pool = own or [r for r in routes if not r.get("host")]
    serving = [r for r in pool if _serves(r, path)]
    exact = [r for r in serving if r.get("pathType") == "Exact"]
    if exact:
        return exact[0]
    return max(serving, key=lambda r: len(str(r.get("path") or "/")), default=None)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, **state: Any) -> None:
        self.state = state
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN; nothing here needs it
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, code: int, body: bytes, content_type: str, reason: str | None = None) -> None:
        self.send_response(code, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    # Only "nginx" in the Server header, as ingress-nginx sends it.
    def version_string(self) -> str:
        return "nginx"


class ControllerHandler(_Quiet):
    """Routes by Host and path to the first backend of the matching route."""

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        path = self.path.split("?", 1)[0]
        route = pick(self.server.state["routes"], host, path)
        if route is None:
            self.reply(404, nginx_page(404), "text/html")
            return
        backends = list(route.get("backends") or [])
        if not backends:
            self.reply(503, nginx_page(503), "text/html", _REASONS[503])
            return
        address, _, port = str(backends[0]).rpartition(":")
        conn = http.client.HTTPConnection(address, int(port), timeout=_PROXY_TIMEOUT)
        try:
            conn.request("GET", self.path, headers={"Host": self.headers.get("Host") or host})
            answer = conn.getresponse()
            body = answer.read()
        except TimeoutError:
            self.reply(504, nginx_page(504), "text/html", "Gateway Time-out")
            return
        except OSError:
            self.reply(502, nginx_page(502), "text/html")
            return
        finally:
            conn.close()
        kind = answer.getheader("Content-Type") or "text/plain"
        self.reply(answer.status, body, kind, answer.reason)

    do_HEAD = do_GET


class BackendHandler(_Quiet):
    """Answers 200 naming itself and the path; /status/NNN answers NNN."""

    def do_GET(self) -> None:
        name = self.server.state["name"]
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) >= 3 and parts[1] == "status" and parts[2].isdigit():
            code = int(parts[2])
            self.reply(code, f"{name}: status {code}\n".encode(), "text/plain")
            return
        self.reply(200, f"{name}: hello from {self.path}\n".encode(), "text/plain")

    do_HEAD = do_GET


def serve(
    kind: str, host: str, port: int, *, routes: Sequence[Mapping[str, Any]] = (), name: str = ""
) -> _Server:
    """Start a stand-in in a daemon thread; return the server (its port is server_port)."""
    handler = ControllerHandler if kind == "controller" else BackendHandler
    server = _Server((host, port), handler, routes=list(routes), name=name or "backend")
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ingress controller and backend stand-ins.")
    parser.add_argument("kind", choices=("controller", "backend"))
    parser.add_argument("--listen", required=True, help="IP:PORT")
    parser.add_argument("--routes", help="JSON file of routes (controller)")
    parser.add_argument("--name", default="backend", help="the backend's name in its answers")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    routes = json.loads(Path(args.routes).read_text()) if args.routes else []
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    server = serve(args.kind, host.strip("[]"), int(port), routes=routes, name=args.name)
    print(f"ready {server.server_address[0]}:{server.server_port}", flush=True)
    done.wait(args.max_seconds)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
