"""The ground floor: the two records every run leaves, Jepsen's history split in two.

`requests`: one record per request (who was asked, who served, when, with what outcome),
kept in memory or written as JSON lines; `stream`: the same log rotated and compressed on
disk for long runs, read while it grows; `faults`: the fault timeline, one event per fault
with when it began, was in force, was being healed and ended. Traffic writes the first,
the fault injector the second; checks, plots, reports and the soak read both. Nothing here
imports anything of the harness above it.
"""
