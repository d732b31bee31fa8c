"""Which persisted sysctl setting wins at boot, and reverse-path filter arithmetic.

Read order, as procps-ng `sysctl --system` does it (procps-ng 4.0.2 verified in a lab
namespace; sysctl.conf(5) and sysctl(8) describe the same list):
1. `*.conf` files of /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d,
   /usr/lib/sysctl.d, /lib/sysctl.d; a basename in an earlier directory masks the same
   basename in later ones;
2. those files sorted by basename, whichever directory they are in;
3. /etc/sysctl.conf last.
Later assignments override earlier ones, except that a glob key
(`net.ipv4.conf.*.rp_filter`) never overrides a key some file sets explicitly (procps 4
and systemd-sysctl both exclude explicitly set keys from glob matching).

systemd-sysctl (`flavor="systemd"`) reads the same directories in the same way but not
/etc/sysctl.conf itself (sysctl.d(5) lists only the directories; procps' sysctl.conf(5)
says systemd-sysctl won't use it); Debian links /etc/sysctl.d/99-sysctl.conf to it so
both read it.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
SYSCTL_CONF = "/etc/sysctl.conf"

RP_FILTER_MEANING = {
    0: "off: no source validation",
    1: "strict: a packet is dropped unless the reply to its source would leave by the "
    "interface it came in on",
    2: "loose: a packet is dropped only if its source is not reachable by any interface",
}


@dataclass(frozen=True)
class SysctlLine:
    """One assignment in a sysctl configuration file."""

    line_no: int
    key: str  # normalized, dot separated: "net.ipv4.ip_forward"
    value: str | None  # None for a bare `-key` (excludes the key from glob matching)
    ignore_errors: bool  # the line started with "-"
    is_glob: bool
    raw: str


@dataclass(frozen=True)
class SysctlSetting:
    """The persisted value of one key and where it comes from."""

    key: str
    value: str | None  # None when no file sets the key
    source_path: str | None
    line_no: int | None
    all_settings: tuple[tuple[str, int, str], ...]  # (path, line_no, value) in read order
    ignore_errors: bool = False  # the winning line had a "-" prefix
    from_glob: bool = False  # the winning line was a glob key


def normalize_key(key: str) -> str:
    """Return key with "." separators (a first "/" means "/" and "." are swapped)."""
    key = key.strip()
    for char in key:
        if char == "/":
            return key.translate(str.maketrans("/.", "./")).strip(".")
        if char == ".":
            break
    return key


def parse_sysctl_conf(text: str) -> list[SysctlLine]:
    """Return the assignments of one sysctl.conf-format file (comments: # and ;)."""
    lines: list[SysctlLine] = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        ignore_errors = line.startswith("-")
        if ignore_errors:
            line = line[1:].lstrip()
        key, sep, value = line.partition("=")
        key = normalize_key(key)
        if not key:
            continue
        if not sep:
            if ignore_errors:
                lines.append(SysctlLine(line_no, key, None, True, _is_glob(key), raw))
            else:
                LOG.debug("ignoring sysctl line without '=' at %d: %r", line_no, raw)
            continue
        lines.append(SysctlLine(line_no, key, value.strip(), ignore_errors, _is_glob(key), raw))
    return lines


def _is_glob(key: str) -> bool:
    """Return whether key is a glob pattern."""
    return any(char in key for char in "*?[")


def sysctl_order(paths: Iterable[str], flavor: str = "procps") -> list[str]:
    """Return the files of paths that `sysctl --system` reads, in the order it reads them.

    Paths outside the configuration directories, and names not ending in ".conf", are
    left out. flavor "systemd" gives systemd-sysctl's order (no /etc/sysctl.conf).
    """
    if flavor not in ("procps", "systemd"):
        raise ValueError(f"unknown sysctl flavor {flavor!r}")
    by_dir: dict[str, set[str]] = {}
    has_conf = False
    for path in paths:
        path = posixpath.normpath(path)
        if path == SYSCTL_CONF:
            has_conf = True
            continue
        directory, name = posixpath.split(path)
        if directory in SYSCTL_DIRS and name.endswith(".conf"):
            by_dir.setdefault(directory, set()).add(name)
    chosen: dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        for name in by_dir.get(directory, ()):
            chosen.setdefault(name, posixpath.join(directory, name))
    # Byte order of the names, as C's strcmp sorts them.
    order = [chosen[name] for name in sorted(chosen, key=lambda n: n.encode())]
    if has_conf and flavor == "procps":
        order.append(SYSCTL_CONF)
    return order


def effective_setting(
    files: list[tuple[str, str]], key: str, flavor: str = "procps"
) -> SysctlSetting:
    """Return the value key gets from files [(path, text)] when they are applied at boot."""
    wanted = normalize_key(key)
    texts = {posixpath.normpath(path): text for path, text in files}
    explicit: list[tuple[str, SysctlLine]] = []
    globbed: list[tuple[str, SysctlLine]] = []
    read: list[tuple[str, SysctlLine]] = []
    excluded = False
    for path in sysctl_order(texts, flavor):
        for line in parse_sysctl_conf(texts[path]):
            if not line.is_glob and line.key == wanted:
                if line.value is None:
                    excluded = True  # a bare "-key": keep globs off this key
                    continue
                explicit.append((path, line))
            elif line.is_glob and line.value is not None and fnmatch.fnmatchcase(wanted, line.key):
                globbed.append((path, line))
            else:
                continue
            read.append((path, line))
    all_settings = tuple((path, line.line_no, line.value or "") for path, line in read)
    candidates = explicit or ([] if excluded else globbed)
    if not candidates:
        return SysctlSetting(wanted, None, None, None, all_settings)
    path, line = candidates[-1]
    return SysctlSetting(
        wanted, line.value, path, line.line_no, all_settings, line.ignore_errors, line.is_glob
    )


def rp_filter_effective(all_value: int, iface_value: int) -> int:
    """Return the reverse-path filter mode the kernel applies: max(all, interface)."""
    return max(int(all_value), int(iface_value))


def rp_filter_meaning(value: int) -> str:
    """Return what an rp_filter mode (0, 1, 2) does to packets."""
    return RP_FILTER_MEANING.get(int(value), f"unknown rp_filter mode {value}")
