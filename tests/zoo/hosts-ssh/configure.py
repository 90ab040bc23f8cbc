"""The files of the hosts-ssh member, written by its cluster.sh: three reference nodes and a
balancer host, each a network namespace of its own (see cluster.sh for the addresses).

    python configure.py DIR CONFIGURATION

writes DIR/ca.pem, each node's certificate, settings (DIR/nodeI.json) and redirect table,
and the balancer host's HAProxy configuration (DIR/haproxy.cfg): the reference cluster's
own, or, for `no_redispatch`, one that never retries on another node, or, for `passes_503`,
one that retries failed connections only and checks nodes by TCP connect.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cluster.haproxy import LbSettings, Server, haproxy_config
from harness.cluster.reference import LB_HTTP, LB_HTTPS, NODE_PORTS, POOL_SIZE, REDIR_EXCLUSIONS
from harness.sut.redirect import render_redir_cnf
from harness.sut.settings import NodeSettings
from harness.tls import RunCA

PREFIX = "198.18.14."
LB, STORE_PORT, BACKEND_PORT = PREFIX + "10", 6379, 6380
NODES = {f"node{i}": f"{PREFIX}1{i}" for i in (1, 2, 3)}
MUTANTS = {"sound": None, "no_redispatch": "lb_no_redispatch", "passes_503": "lb_passes_503"}


def main(directory: Path, configuration: str) -> None:
    if configuration not in MUTANTS:
        sys.exit(f"configure.py: unknown configuration {configuration!r} ({', '.join(MUTANTS)})")
    ca = RunCA(directory)
    lb = LbSettings(LB, LB_HTTP, LB_HTTPS, ca.issue_combined("lb", LB), ca.ca_file)
    for node, address in NODES.items():
        cert = ca.issue(node, address, LB)
        redir = directory / f"{node}-redir.cnf"
        redir.write_text(render_redir_cnf(REDIR_EXCLUSIONS))
        NodeSettings(
            node_id=node, host=address, **{f"{p}_port": port for p, port in NODE_PORTS.items()},
            advertise_http=f"http://{address}:{NODE_PORTS['http']}",
            advertise_https=f"https://{address}:{NODE_PORTS['https']}",
            redis_url=f"redis://{LB}:{STORE_PORT}/0", backend_url=f"redis://{LB}:{BACKEND_PORT}/0",
            pool_size=POOL_SIZE, tls_cert=cert.cert, tls_key=cert.key, redir_cnf=redir,
        ).write(directory / f"{node}.json")
    servers = [Server(node, *((address, port) for port in NODE_PORTS.values()))
               for node, address in NODES.items()]
    (directory / "haproxy.cfg").write_text(haproxy_config(lb, servers, MUTANTS[configuration]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
