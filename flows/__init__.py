"""Prefect flows: thin @task/@flow wrappers over rlaif/ functions."""
