"""Capacity run against a cluster: HTTP, HTTPS, FTP and SMTP users, counted per serving node.

    harness up --nodes 3 &                  # writes reports/endpoints.json
    locust -f loadtests/ --headless -u 20 -r 10 -t 30s --csv reports/capacity --html reports/capacity.html
    locust -f loadtests/                    # the web UI, on http://127.0.0.1:8089

The cluster comes from `--endpoints-file` (what `harness up` wrote), `--topology FILE`, or
`--host URL` (HTTP(S) through that entry point only). `locust -f loadtests/ --help` lists the
options under "cluster (harness)". The step load shape lives in `_step_shape.py`, which a
directory run skips; add it to `-f` to find the saturation throughput.
"""

from harness.traffic import capacity
from harness.traffic.capacity import (ClusterFtpUser, ClusterHttpsUser,  # noqa: F401 - Locust's users
                                      ClusterHttpUser, ClusterSmtpUser)

capacity.register()
