"""The pytest entry point: everything lives in the `harness.plugin` plugin."""

pytest_plugins = ["harness.plugin"]
