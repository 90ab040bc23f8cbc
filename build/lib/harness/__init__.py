"""Chaos and conformance harness for clustered integration servers.

The data flow, one module per stage: a topology (`config`) describes a cluster, a backend
(`cluster`) starts or reaches it, `traffic` writes the request log while `faults` writes the
fault timeline, `checks` judge both, `report` renders the outcome for Allure.
"""
