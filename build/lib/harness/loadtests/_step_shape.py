"""Step load until saturation: add it to a run of the cluster's users.

    locust -f loadtests/,loadtests/_step_shape.py --headless --step-users 5 --step-seconds 10 \
        --max-p95-ms 500 --max-error-rate 0.01

Stops by itself at the first step past a bound (or at --step-max-users) and writes the steps
and the saturation throughput to --step-report (reports/capacity_steps.json).
"""

from harness.traffic.capacity import StepLoadShape  # noqa: F401 - Locust's shape class
