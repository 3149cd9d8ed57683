"""A run's steps in one place: the runner, its steps, sampling, the manifest, incremental runs, executors (in process, Ray), preflight, dry run, summary."""
