"""Prefect flows: thin @task/@flow wrappers over rlaif/ functions."""

import os

# The ephemeral server would try to send telemetry; this machine (and many clusters) has no route out.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from rlaif.core.progress import quiet_library_bars  # noqa: E402

quiet_library_bars()  # a worker's output goes to a file: no carriage-return bars of the Hugging Face libraries
