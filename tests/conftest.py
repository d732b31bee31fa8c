from __future__ import annotations

import os
import shutil
import sys

import pytest


def _lab_unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("ip", "iptables", "bird", "dnsmasq", "sshd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"the lab needs {tool}"
    return None


@pytest.fixture(scope="session")
def lab():
    """One lab for the whole session; each test injects at most one fault and heals it."""
    reason = _lab_unavailable()
    if reason:
        pytest.skip(reason)
    from k8sreach.lab import Lab

    with Lab() as built:
        yield built
