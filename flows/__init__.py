"""Prefect flows: thin @task/@flow wrappers over rlaif/ functions."""

import os

# The ephemeral server would try to send telemetry; this machine (and many clusters) has no route out.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
