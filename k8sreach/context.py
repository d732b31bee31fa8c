"""What a check can see of its run: settings, target, facts, other results, time left."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from k8sreach.config import Settings
from k8sreach.result import CheckResult
from k8sreach.target import Target

if TYPE_CHECKING:
    from k8sreach.cluster import ClusterAccess
    from k8sreach.remote import Host

LOG = logging.getLogger(__name__)


class Unavailable(Exception):
    """Raised inside a check when something it needs cannot be had; the check becomes `skip`."""

    def __init__(self, reason: str, caused_by: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.caused_by = caused_by


class RunContext:
    """Shared state of one `doctor` run; safe to use from the checks' threads."""

    def __init__(self, settings: Settings, target: Target) -> None:
        self.settings = settings
        self.target = target
        self.started = time.monotonic()
        self.deadline = self.started + settings.run_deadline
        self._lock = threading.Lock()
        self._facts: dict[str, Any] = {}
        self._results: dict[str, CheckResult] = {}
        self._gateway: Host | None = None
        self._gateway_error: Unavailable | None = None
        self._gateway_lock = threading.Lock()
        self._closers: list[Any] = []
        self._memo: dict[str, Any] = {}
        self._memo_locks: dict[str, threading.Lock] = {}
        self._cluster: ClusterAccess | None = None
        self._cluster_error: Unavailable | None = None
        self._cluster_lock = threading.Lock()

    # Facts and results -------------------------------------------------------------------

    def fact(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._facts.get(name, default)

    def has_fact(self, name: str) -> bool:
        with self._lock:
            return name in self._facts

    def publish(self, facts: dict[str, Any]) -> None:
        """Record facts for later checks; the first value of a fact wins.

        Addresses and ports come from DNS answers and API objects, which may be hostile: an
        address that is not an IP literal or a port outside 1-65535 is dropped here, so no
        probe ever resolves a name it was handed or connects to a nonsense port.
        """
        with self._lock:
            for key, value in facts.items():
                problem = _bad_fact(key, value)
                if problem:
                    LOG.warning("ignoring the %s fact %r: %s", key, value, problem)
                    continue
                self._facts.setdefault(key, value)

    def record(self, result: CheckResult) -> None:
        with self._lock:
            self._results[result.id] = result

    def result(self, check_id: str) -> CheckResult | None:
        with self._lock:
            return self._results.get(check_id)

    def memo(self, key: str, compute: Any) -> Any:
        """compute() once per run for `key` (e.g. one iptables-save read shared by checks)."""
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    # Time --------------------------------------------------------------------------------

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def probe_timeout(self) -> float:
        """The per-probe timeout, cut short when the run's deadline is nearer."""
        return max(0.05, min(self.settings.timeout, self.remaining()))

    # Gateway access ----------------------------------------------------------------------

    @property
    def gateway_configured(self) -> bool:
        return bool(self.settings.ssh or self.settings.on_gateway)

    def gateway(self) -> Host:
        """The one shared connection to the gateway, opened by the first check that asks."""
        if not self.gateway_configured:
            raise Unavailable(
                "no access to the gateway: give --ssh DEST (or --on-gateway when k8sreach "
                "runs on the gateway itself)"
            )
        with self._gateway_lock:
            if self._gateway is not None:
                return self._gateway
            if self._gateway_error is not None:
                raise self._gateway_error
            from k8sreach import remote

            try:
                host: Host
                if self.settings.on_gateway:
                    host = remote.LocalHost()
                else:
                    assert self.settings.ssh is not None
                    ssh = remote.SshHost(
                        self.settings.ssh,
                        identity=self.settings.ssh_identity,
                        options=dict(self.settings.ssh_option),
                        connect_timeout=self.probe_timeout(),
                    )
                    self._closers.append(ssh)
                    ssh.connect(self.probe_timeout())
                    host = ssh
            except remote.AccessError as exc:
                self._gateway_error = Unavailable(f"cannot reach the gateway over SSH: {exc}")
                raise self._gateway_error from None
            self._gateway = host
            return host

    # Cluster API ---------------------------------------------------------------------------

    @property
    def cluster_configured(self) -> bool:
        """True when a kubeconfig is in play: --kubeconfig, KUBECONFIG, or ~/.kube/config."""
        return cluster_configured(self.settings)

    def cluster(self) -> ClusterAccess:
        """The API access of this run, built once; Unavailable (a skip) when there is none."""
        if not self.cluster_configured:
            raise Unavailable(
                "no kubeconfig: give --kubeconfig FILE (or set KUBECONFIG) to compare with the "
                "cluster's API"
            )
        with self._cluster_lock:
            if self._cluster is not None:
                return self._cluster
            if self._cluster_error is not None:
                raise self._cluster_error
            from k8sreach.cluster import ClusterAccess, ClusterError

            try:
                access = ClusterAccess.from_kubeconfig(
                    self.settings.kubeconfig, self.settings.context, timeout=self.probe_timeout()
                )
            except ClusterError as exc:
                self._cluster_error = Unavailable(f"cluster API not used: {exc}")
                raise self._cluster_error from None
            self._closers.append(access)
            self._cluster = access
            return access

    def close(self) -> None:
        for closer in self._closers:
            try:
                closer.close()
            except Exception:  # closing must never hide the run's own result
                LOG.debug("closing %r failed", closer, exc_info=True)


def _bad_fact(key: str, value: Any) -> str | None:
    import ipaddress

    if key == "address":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            return "not an IP address"
    elif key == "addresses":
        if not isinstance(value, list | tuple):
            return "not a list"
        for item in value:
            try:
                ipaddress.ip_address(str(item))
            except ValueError:
                return f"{item!r} is not an IP address"
    elif key == "port":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            return "not a port number from 1 to 65535"
    return None


def cluster_configured(settings: Settings) -> bool:
    import os
    from pathlib import Path

    return bool(
        settings.kubeconfig
        or os.environ.get("KUBECONFIG")
        or Path("~/.kube/config").expanduser().is_file()
    )
