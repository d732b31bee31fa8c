"""Settings for a run: a TOML file of named profiles (one per cluster), overridden by flags."""

from __future__ import annotations

import ipaddress
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from k8sreach.errors import UserError

LOG = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(UserError):
    """The configuration file or a setting in it is unusable."""


@dataclass(frozen=True)
class Endpoint:
    """A host and port, e.g. the DNS server to ask."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Every setting of `doctor`; flags and profile keys share these names (with '-')."""

    namespace: str | None = None
    port: int | str | None = None
    cluster_domain: str = "cluster.local"
    dns: Endpoint | None = None
    kube_dns: Endpoint | None = None
    gateway: str | None = None
    service_cidr: tuple[IPNetwork, ...] = ()
    pod_cidr: tuple[IPNetwork, ...] = ()
    timeout: float = 2.0
    deadline: float | None = None
    ssh: str | None = None
    ssh_identity: str | None = None
    ssh_option: tuple[tuple[str, str], ...] = ()
    on_gateway: bool = False
    bird_socket: str | None = None
    kube_proxy_path: str | None = None
    kube_proxy_sha256: str | None = None
    kube_proxy_reference: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    ingress: str | None = None  # --ingress NAME (a flag only: no profile key)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_deadline(self) -> float:
        """Seconds the whole run may take: a few probe timeouts in sequence, at most."""
        return self.deadline if self.deadline is not None else 3 * self.timeout + 1.0


def parse_endpoint(text: str, default_port: int = 53) -> Endpoint:
    """Parse HOST, HOST:PORT, IPv6, or [IPv6]:PORT."""
    value = text.strip()
    host, port = value, default_port
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise ConfigError(f"'{text}': missing ']' after an IPv6 address")
        host, rest = value[1:close], value[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"'{text}': expected ':PORT' after ']'")
            port = _port_number(rest[1:], text)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = _port_number(port_text, text)
    if not host:
        raise ConfigError(f"'{text}' names no host")
    return Endpoint(host, port)


def _port_number(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise ConfigError(f"'{whole}': the port must be a number from 1 to 65535")
    return int(text)


def _ip_endpoint(text: str, what: str) -> Endpoint:
    """Parse IP, IP:PORT or [IPv6]:PORT; a host name is refused (it would need DNS itself)."""
    endpoint = parse_endpoint(text)
    return Endpoint(parse_ip(endpoint.host, what), endpoint.port)


def parse_ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ConfigError(f"{what} '{text}' is not an IP address") from None


def parse_cidr(text: str, what: str = "CIDR") -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            fixed = ipaddress.ip_network(text.strip(), strict=False)
            raise ConfigError(f"{what} '{text}' has host bits set; did you mean {fixed}?") from None
        raise ConfigError(f"{what} '{text}' is not a network such as 10.96.0.0/12") from None


def parse_timeout(value: Any, what: str = "timeout") -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value} is not a number of seconds")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} '{value}' is not a number of seconds") from None
    if not 0.05 <= number <= 300:
        raise ConfigError(f"{what} {value} is out of range; use 0.05 to 300 seconds")
    return number


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _ssh_options(value: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    items = value.items() if isinstance(value, Mapping) else [_split_kv(v) for v in _as_list(value)]
    for key, val in items:
        key, val = str(key), str(val)
        if not key.isalnum() or "\n" in val or "\r" in val:
            raise ConfigError(f"ssh option '{key}={val}' is not KEY=VALUE (KEY letters only)")
        from k8sreach.remote import AccessError, parse_ssh_option

        try:
            parse_ssh_option(f"{key}={val}")
        except AccessError as exc:
            raise ConfigError(str(exc)) from None
        pairs.append((key, val))
    return tuple(pairs)


def _split_kv(text: Any) -> tuple[str, str]:
    key, sep, val = str(text).partition("=")
    if not sep or not key:
        raise ConfigError(f"ssh option '{text}' is not KEY=VALUE, e.g. Port=2222")
    return key, val


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"'{value}' should be a non-empty string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"'{value}' should be true or false")
    return value


def _port_setting(value: Any) -> int | str:
    from k8sreach.target import parse_port

    return parse_port(str(value))


def _sha256(value: Any) -> str:
    text = _str(value).lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"'{value}' is not a sha256 checksum (64 hex digits)")
    return text


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "namespace": _str,
    "port": _port_setting,
    "cluster_domain": _str,
    "dns": lambda v: _ip_server(parse_endpoint(_str(v))),
    "kube_dns": lambda v: _ip_endpoint(_str(v), "kube-dns"),
    "gateway": lambda v: parse_ip(_str(v), "gateway"),
    "service_cidr": lambda v: tuple(parse_cidr(str(x), "service CIDR") for x in _as_list(v)),
    "pod_cidr": lambda v: tuple(parse_cidr(str(x), "pod CIDR") for x in _as_list(v)),
    "timeout": parse_timeout,
    "deadline": lambda v: parse_timeout(v, "deadline"),
    "ssh": lambda v: _ssh_dest(_str(v)),
    "ssh_identity": _str,
    "ssh_option": _ssh_options,
    "on_gateway": _bool,
    "bird_socket": lambda v: _absolute(_str(v), "BIRD socket"),
    "kube_proxy_path": lambda v: _absolute(_str(v), "kube-proxy path"),
    "kube_proxy_sha256": _sha256,
    "kube_proxy_reference": _str,
    "kubeconfig": _str,
    "context": _str,
}


def _ip_server(endpoint: Endpoint) -> Endpoint:
    """A DNS server must be an address: resolving its name would need DNS itself."""
    parse_ip(endpoint.host, "DNS server")
    return endpoint


def _ssh_dest(dest: str) -> str:
    if dest.startswith("-") or any(c.isspace() for c in dest):
        raise ConfigError(f"'{dest}' is not an ssh destination; give [user@]host or a Host alias")
    return dest


def _absolute(path: str, what: str) -> str:
    if not path.startswith("/") or any(c in path for c in "\n\r\0"):
        raise ConfigError(f"the {what} '{path}' must be an absolute path on one line")
    return path


def default_config_path() -> Path:
    env = os.environ.get("K8SREACH_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "k8sreach" / "config.toml"


def load_profile(path: Path | None, profile: str | None) -> dict[str, Any]:
    """Return the settings of one profile, parsed; {} when no file exists and none was asked."""
    explicit = path is not None or bool(os.environ.get("K8SREACH_CONFIG"))
    file = path if path is not None else default_config_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        if profile:
            raise ConfigError(f"profile '{profile}' asked for, but there is no config file {file}")
        return {}
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None

    unknown = sorted(set(data) - {"profiles", "default-profile"})
    if unknown:
        raise ConfigError(
            f"{file}: unknown top-level key(s) {', '.join(unknown)}; a config file holds "
            "default-profile and [profiles.NAME] tables"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{file}: [profiles] must be a table of named profiles")
    # Every profile is checked, not only the one in use: a typo in another cluster's
    # profile should surface today, not during that cluster's outage.
    parsed_all = {name: _parse_profile(file, name, raw) for name, raw in profiles.items()}
    name = profile or data.get("default-profile")
    if name is None:
        if parsed_all:
            LOG.warning(
                "%s has profiles (%s) but none is used: give --profile NAME or set default-profile",
                file,
                ", ".join(sorted(parsed_all)),
            )
        return {}
    if name not in parsed_all:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{file}: no profile '{name}' (profiles: {known})")
    return parsed_all[name]


def _parse_profile(file: Path, name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: profile '{name}' must be a table")
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        attr = key.replace("-", "_")
        if attr not in _PARSERS:
            known_keys = ", ".join(sorted(k.replace("_", "-") for k in _PARSERS))
            raise ConfigError(f"{file}: profile '{name}' has unknown key '{key}' ({known_keys})")
        try:
            parsed[attr] = _PARSERS[attr](value)
        except UserError as exc:
            raise ConfigError(f"{file}: profile '{name}', {key}: {exc}") from None
    return parsed


def build_settings(profile_values: Mapping[str, Any], flags: Mapping[str, Any]) -> Settings:
    """Profile values first, then every flag the user gave (None or empty means not given)."""
    values: dict[str, Any] = dict(profile_values)
    for key, value in flags.items():
        if value is None or value == () or value is False and key in values:
            continue
        values[key] = value
    known = {f.name for f in fields(Settings)}
    return replace(Settings(), **{k: v for k, v in values.items() if k in known})
