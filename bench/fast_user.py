"""The reference point for load generation: Locust's own FastHttpUser calling one service back
to back, with nothing of the harness in the way (bench/run.py compares it with wrk)."""

from locust import FastHttpUser, constant, task


class WhoAmI(FastHttpUser):
    wait_time = constant(0)

    @task
    def whoami(self) -> None:
        self.client.get("/invoke/harness.demo:whoami")
