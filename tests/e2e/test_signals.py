"""End-to-end: a run ended by SIGTERM cleans up its SSH master connection like Ctrl-C does."""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from k8sreach.demo import doctor_argv

pytestmark = pytest.mark.lab


def _masters() -> set[str]:
    return set(glob.glob("/tmp/k8sreach-ssh-*"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_leaves_no_ssh_master_behind(lab, signum):
    # A BIRD socket that accepts and never answers keeps one gateway command busy, so the
    # signal arrives while the master connection is up.
    path = f"/tmp/k8sreach-test-{uuid.uuid4().hex[:8]}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    before = _masters()
    try:
        proc = subprocess.Popen(
            doctor_argv(lab, "--bird-socket", path, "--timeout", "5", "-o", "json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (_masters() - before):
            time.sleep(0.05)
        assert _masters() - before, "the SSH master never came up"
        time.sleep(0.5)
        # `ip netns exec` execs k8sreach, so the process we started is k8sreach itself.
        os.kill(proc.pid, signum)
        _out, err = proc.communicate(timeout=15)
        assert "interrupted" in err
        assert proc.returncode == 128 + signum
        time.sleep(0.5)
        assert _masters() - before == set()
        leftover = subprocess.run(["pgrep", "-f", "k8sreach-ssh-"], capture_output=True, text=True)
        assert leftover.stdout.strip() == ""
    finally:
        stop.set()
        for conn in held:
            conn.close()
        server.close()
        os.unlink(path)
