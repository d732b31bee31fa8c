"""Find and load checks from the `k8sreach.checks` entry-point group.

Two steps, as a user would debug them: find the entry points (cheap, sorted so every run
sees the same order), then load each one. A check that fails to load is reported by name
and left out; it never stops the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from k8sreach.check import Check
from k8sreach.result import Hop

LOG = logging.getLogger(__name__)
GROUP = "k8sreach.checks"


@dataclass(frozen=True)
class Loaded:
    """The checks that loaded, in path order, and a line for each that did not."""

    checks: tuple[type[Check], ...]
    errors: tuple[str, ...]


def find() -> list[EntryPoint]:
    """Return the installed entry points of the group, sorted by name then value."""
    found = entry_points(group=GROUP)
    # For two checks of one id, the built-in comes first: a third-party package must not
    # replace a built-in check silently.
    return sorted(found, key=lambda ep: (ep.name, not _builtin(ep), ep.value))


def _builtin(ep: EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == "k8sreach"


def _validate(ep: EntryPoint, obj: object) -> type[Check]:
    if not (isinstance(obj, type) and issubclass(obj, Check)):
        raise TypeError(f"{ep.value} is not a k8sreach.check.Check subclass")
    if obj.id != ep.name:
        raise TypeError(f"its class says id '{obj.id}' but the entry point is named '{ep.name}'")
    if not isinstance(obj.hop, Hop):
        raise TypeError(f"hop {obj.hop!r} is not one of {', '.join(h.value for h in Hop)}")
    return obj


def load(eps: list[EntryPoint] | None = None) -> Loaded:
    """Load every entry point; a broken one becomes an error line naming it and its package."""
    checks: dict[str, type[Check]] = {}
    errors: list[str] = []
    for ep in find() if eps is None else eps:
        package = ep.dist.name if ep.dist is not None else "unknown package"
        try:
            cls = _validate(ep, ep.load())
        except Exception as exc:  # a third-party plugin may raise anything while importing
            LOG.debug("loading check %s failed", ep.name, exc_info=True)
            errors.append(f"check '{ep.name}' from {package} failed to load: {exc}")
            continue
        if ep.name in checks:
            errors.append(
                f"check '{ep.name}' from {package} is ignored: a check with that id is already "
                f"installed ({checks[ep.name].__module__})"
            )
            continue
        checks[ep.name] = cls
    ordered = sorted(checks.values(), key=lambda c: (c.hop.position, c.order, c.id))
    return Loaded(tuple(ordered), tuple(errors))
