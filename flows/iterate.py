"""Iterative RLAIF flow `rlaif-iterate`: rounds of sample -> judge -> version -> train -> evaluate.

The loop, its order, its state (STORE/loops/<loop id>/state.json) and its resume rules are the
library's (`rlaif.loop.iterate.run_loop`, the same as `rlaif iterate --no-prefect`); this module runs
each step of each round as a Prefect task (`sample`, `train`, `eval`) and posts per round:

- `rlaif-iterate-round-<k>`: Markdown with the round's version, model and win rate (95% interval);
- `rlaif-iterate-rounds`: a table of every round so far (updated after each round).

Its parameters are plain (recipe path, store, rounds), so it deploys as it is:

    from rlaif.flows.server import prefect_api
    with prefect_api():
        from rlaif.flows.iterate import rlaif_iterate
        result = rlaif_iterate(recipe_path="recipes/iterate.yaml", store="data/store", rounds=2)
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from rlaif.core.errors import RlaifError


def _io_error(task, task_run, state) -> bool:
    """Retry a step only for an OSError (a flaky disk or API); an RlaifError is a value, never retried."""
    return isinstance(state.data, OSError)


def _step(fn, *args):
    try:
        return fn(*args)
    except RlaifError as exc:  # returned, not raised: no traceback in the Prefect log; the flow raises it
        return exc


@task(name="iterate-sample", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=_io_error)
def sample_task(path: str, store: str, number: int, policy_model: str) -> dict | RlaifError:
    """Round `number`'s dataset version, sampled from `policy_model` (rlaif.loop.iterate.sample_round)."""
    from rlaif.loop.iterate import sample_round

    return _step(sample_round, path, store, number, policy_model)


@task(name="iterate-train", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=_io_error)
def train_task(path: str, store: str, version_id: str, base_model: str) -> dict | RlaifError:
    """The round's model trained on `version_id` from `base_model` (rlaif.loop.iterate.train_round)."""
    from rlaif.loop.iterate import train_round

    return _step(train_round, path, store, version_id, base_model)


@task(name="iterate-eval", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=_io_error)
def eval_task(path: str, store: str, new_model: str, baseline: str) -> dict | RlaifError:
    """Win rate of `new_model` over `baseline` on the held-out prompts (rlaif.loop.iterate.eval_round)."""
    from rlaif.loop.iterate import eval_round

    return _step(eval_round, path, store, new_model, baseline)


TASKS = {"sample": sample_task, "train": train_task, "eval": eval_task}


def prefect_step(kind: str, fn, *args: Any) -> Any:
    """`rlaif.loop.iterate.run_loop`'s executor here: the step `fn` as its kind's task (which calls the same
    library function with the same plain values); an RlaifError it returned is raised."""
    value = TASKS[kind](*args)
    if isinstance(value, RlaifError):
        raise value
    return value


def round_markdown(entry: dict[str, Any]) -> str:
    """A round's key figures as Markdown (its artifact)."""
    from rlaif.loop.iterate import win_line

    ev = entry.get("eval") or {}
    return "\n".join(
        [
            f"## rlaif iterate: round {entry['round']}",
            "",
            f"- policy sampled: `{entry['policy']}`",
            f"- dataset version: `{entry['version']}` ({entry.get('kept', '?')} pairs kept)",
            f"- trained model: `{entry['model']}`" + ("" if entry.get("trained", True) else " (reused)"),
            f"- {win_line(entry['round'], ev)}",
            f"- judge calls live / cached / failed: {(ev.get('calls') or {}).get('live')} / {(ev.get('calls') or {}).get('cached')} / {(ev.get('calls') or {}).get('failed')}",
        ]
    )


def rounds_table(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per round.

    >>> rounds_table([{"round": 1, "policy": "p", "version": "v", "model": "m", "eval": {"win_rate": 0.5, "win_rate_ci95": [0.2, 0.8], "n": 4}}])
    [{'round': 1, 'policy': 'p', 'version': 'v', 'model': 'm', 'win_rate': 0.5, 'ci95_low': 0.2, 'ci95_high': 0.8, 'n': 4}]
    """
    rows = []
    for entry in rounds:
        ev = entry.get("eval") or {}
        ci = ev.get("win_rate_ci95") or [None, None]
        rows.append(
            {
                "round": entry["round"],
                "policy": entry["policy"],
                "version": entry.get("version"),
                "model": entry.get("model"),
                "win_rate": ev.get("win_rate"),
                "ci95_low": ci[0],
                "ci95_high": ci[1],
                "n": ev.get("n"),
            }
        )
    return rows


class _Artifacts:
    """`on_round`: the round's Markdown and the table of rounds so far."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []

    def __call__(self, entry: dict[str, Any]) -> None:
        self.rounds.append(entry)
        create_markdown_artifact(
            key=f"rlaif-iterate-round-{entry['round']}",
            markdown=round_markdown(entry),
            description=f"Round {entry['round']} of the loop",
        )
        create_table_artifact(
            rounds_table(self.rounds),
            key="rlaif-iterate-rounds",
            description="Win rate of each round's model over the policy before it",
        )


def _echo(line: str) -> None:
    """A line of the loop's progress: into the flow run's log, which Prefect also shows on the console (a print
    besides it showed every line twice)."""
    from prefect.logging import get_run_logger

    get_run_logger().info(line)


@flow(name="rlaif-iterate")
def rlaif_iterate(recipe_path: str, store: str | None = None, rounds: int | None = None) -> dict:
    """Run (or resume) the iterative loop of `recipe_path` (a recipe with an `iterate:` section) for up
    to `rounds` rounds (default: the recipe's); returns the loop state with `final_model`."""
    from rlaif.config.recipe import recipe_file_store
    from rlaif.loop.iterate import run_loop

    try:
        where = recipe_file_store(recipe_path, store)
        return run_loop(recipe_path, where, rounds, run_step=prefect_step, echo=_echo, on_round=_Artifacts())
    except RlaifError as exc:  # the flow run ends Failed with the message; calling rlaif_iterate raises exc
        return Failed(message=str(exc), data=exc)
