"""A soak: minutes of load on every protocol, a seeded nemesis, the contract judged window by
window, in flat memory.

Jepsen's shape: a generator (Locust drivers, `harness.traffic.load`, streaming their request
logs to rotated segments on disk), a nemesis (`harness.nemesis.schedule`, injected through the
world's fault injector, always healed) and checkers (`harness.judge`), here applied to one
window at a time while the soak runs. `plan`: what to run, and the options that say so
(declared once, for `harness soak` and pytest's `--soak-*`); `windows`: what each window is
judged by (pure); `run`: the loop that injects, follows the logs and judges; `report`: the
files a soak leaves.

    result = Soak(world, SoakPlan(minutes=30, seed=7)).run()
    result.verdict        # violated if any window was, else inconclusive if any was, else passed
"""
