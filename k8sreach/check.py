"""The interface every check implements, built-in or third-party.

A check is a class registered in the entry-point group `k8sreach.checks`. It declares:

- `id`: its public name (`route-present`), `hop`: where on the path it looks, and `order`:
  its place within the hop (smaller is nearer the client);
- `needs`: facts it cannot run without (`address`, `port`, `gateway`): when a fact is still
  unknown after every check that could provide it has finished, the check is `skip`;
- `wants`: facts it uses when known; the check waits for their providers but runs anyway;
- `provides`: facts its finding may publish for later checks;
- `explained_by`: checks whose failure explains a failure of this one (a timeout to the
  ClusterIP is explained by a missing route); the report then marks this one `caused_by`
  the earliest of them that failed, so one fault reads as one fault.

`run(ctx)` returns a Finding. Raising is allowed: the runner reports it as `error`.
The class docstring's first paragraph is the description `k8sreach checks` shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from k8sreach.result import Finding, Hop

if TYPE_CHECKING:
    from k8sreach.context import RunContext

# Facts a run can know. Checks may define more; these are the ones the engine seeds.
ADDRESS = "address"  # the address to probe (a ClusterIP or a pod address)
ADDRESSES = "addresses"  # every address DNS or the API gave
PORT = "port"  # the port number to probe
GATEWAY = "gateway"  # access to the gateway: a k8sreach.remote.Host
REACHABLE = "reachable"  # True once the Service answered on its port
CLUSTER = "cluster"  # a kubeconfig is in play: ctx.cluster() gives the API access
SERVICE = "service"  # the Service object as the API returned it (a dict)
ENDPOINTS = "endpoints"  # endpoint addresses behind the Service ("ip:port" strings)


class Check:
    """Base class of every check."""

    id: ClassVar[str] = ""
    hop: ClassVar[Hop] = Hop.CLIENT
    order: ClassVar[int] = 500
    needs: ClassVar[tuple[str, ...]] = ()
    wants: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    explained_by: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def description(cls) -> str:
        """The docstring's first paragraph, on one line."""
        doc = (cls.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())

    def run(self, ctx: RunContext) -> Finding:  # pragma: no cover - interface
        raise NotImplementedError
