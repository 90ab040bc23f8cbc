"""Cluster backends behind one interface: `base.Cluster`, chosen by `backends.start_cluster`."""

from harness.cluster.base import Cluster

__all__ = ["Cluster"]
