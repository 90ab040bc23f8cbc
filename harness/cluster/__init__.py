"""Cluster backends behind one interface: `base.Cluster`, chosen by `backends.start_cluster`."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.cluster.base import Cluster

__all__ = ["Cluster"]


def __getattr__(name: str) -> Any:
    """`Cluster`, imported when first asked for (PEP 562): the CLI imports `backends` for its
    choices, and the kill switch (`harness abort`) must not wait for the topology models."""
    if name == "Cluster":
        from harness.cluster.base import Cluster
        return Cluster
    raise AttributeError(name)
