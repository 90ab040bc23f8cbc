"""Which node a fault hits, and what the entry balances, found from what the traffic saw."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness import checks, victims
from harness.cluster import Cluster
from harness.config import BalancingUnit
from harness.config import Protocol as WireProtocol
from harness.errors import ConfigurationError, HarnessError
from harness.history.requests import ENTRY, RequestLog, RequestRecord
from harness.thresholds import Thresholds
from harness.traffic.clients import HttpClient
from harness.traffic.load import Load
from harness.world.reporter import Reporter

UNIT_PROBE_REQUESTS = 12
SESSION_PROBES = 6
VICTIM_WAIT_S = 5.0  # the longest a victim is waited for to serve after the warm-up
VICTIM_POLL_S = 0.1


class Victims:
    def __init__(self, cluster: Cluster, thresholds: Thresholds, report: Reporter,
                 expect_set_up: Callable[[RequestRecord, str], RequestRecord]) -> None:
        self.cluster, self.thresholds, self.report = cluster, thresholds, report
        self.expect_set_up = expect_set_up

    def pick(self, load: Load, choice: str) -> str:
        """The node to fault: `choice` if it names one, else the node that served most
        through the entry during the load's warm-up (a victim without traffic proves nothing).
        Either way it is waited for (at most VICTIM_WAIT_S) until it serves as much as the
        failover check needs before its fault: a balancer may hold nodes out of rotation for
        its fail timeout after an earlier fault, and a loaded machine makes a second's warm-up
        thin. The report says what was waited for; the check judges what the history shows."""
        named = choice != "busiest"
        if named:
            self.cluster.topology.node(choice)
        nodes = self.cluster.node_ids
        need, start = self.thresholds.min_victim_requests, time.monotonic()
        while True:
            records = load.records_so_far()
            picked = (choice, "chosen with --victim") if named else victims.busiest(records, nodes)
            enough = picked is not None and \
                checks.served_lately(records, picked[0], time.monotonic()) >= need
            waited = time.monotonic() - start
            if enough or waited > VICTIM_WAIT_S or not load.running():
                break
            time.sleep(VICTIM_POLL_S)
        if picked is None:
            entry = [r for r in records if r.endpoint == ENTRY]
            error = next((f" (first error: {r.error})" for r in entry if r.error), "")
            raise HarnessError(f"none of {len(entry)} requests through the entry succeeded in the "
                               f"warm-up and {waited:.1f} s after it{error}, so no victim can be chosen")
        victim, why = picked
        if not enough:
            why += f"; it served fewer than {need} requests in the last " \
                   f"{checks.VICTIM_LOOKBACK_S:g} s even {waited:.1f} s after the warm-up"
        elif waited > VICTIM_POLL_S:
            why += f"; it served too little for {waited:.1f} s after the warm-up, then enough"
        self.report.parameter("victim", victim)
        self.report.attach("victim", f"victim {victim} ({why})")
        return victim

    def by_session(self, protocol: WireProtocol, open_entry_session: Callable[[], RequestRecord],
                   fix: str) -> str:
        """The node to fail for a session protocol (FTP, SMTP): with a cluster entry for it,
        the node the entry sends this client's sessions to, found out by opening a few;
        without one, the first node."""
        if self.cluster.topology.entry.get(protocol) is None:
            return self.cluster.node_ids[0]
        sessions = [self.expect_set_up(open_entry_session(), fix) for _ in range(SESSION_PROBES)]
        victim, found = victims.session_affinity(sessions)
        with self.report.step(f"{protocol} sessions through the entry: {found}; victim {victim}"):
            self.report.parameter(f"entry sessions ({protocol})", found)
            self.report.parameter("victim", victim)
        return victim

    def balancing_unit(self, protocol: WireProtocol) -> BalancingUnit:
        """What the entry balances: as the topology says, else found out as `harness init`
        finds it (`victims.balancing_unit`), from requests over one keep-alive connection and
        over fresh ones; where one node answered everything, per connection."""
        declared = self.cluster.topology.balancing
        if declared != "auto":
            unit, why = declared, "declared in the topology (balancing)"
        else:
            kept = self._answering(protocol, fresh=False)
            fresh = self._answering(protocol, fresh=True) if len(set(kept)) == 1 else []
            found, why = victims.balancing_unit(kept, fresh)
            unit = found or "connection"
            if found is None:
                why += ": judged per connection, which spreads under either balancer"
        with self.report.step(f"balancing unit over {protocol}: {unit} ({why})"):
            self.report.parameter(f"balancing unit ({protocol})", unit)
        return unit

    def _answering(self, protocol: WireProtocol, fresh: bool) -> list[str]:
        """The nodes that answered UNIT_PROBE_REQUESTS requests through the entry, over one
        keep-alive connection or a fresh connection each; an error where none named a node."""
        probe = RequestLog()
        client = HttpClient(self.cluster.topology, probe, verify=self.cluster.ca_file,
                            fresh_connections=fresh)
        records = [client.request(protocol=protocol) for _ in range(UNIT_PROBE_REQUESTS)]
        nodes = [r.node for r in records if r.ok and r.node]
        if not nodes:
            failed = next((r.error for r in records if not r.ok), "no node identity")
            raise ConfigurationError(f"the {protocol} entry did not answer with a node identity ({failed})")
        return nodes
