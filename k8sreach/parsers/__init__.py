"""Pure parsers for the gateway-side command outputs k8sreach reads (no I/O, no subprocess)."""

from __future__ import annotations

from k8sreach.parsers.errors import ParseError

__all__ = ["ParseError"]
