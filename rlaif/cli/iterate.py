"""`rlaif iterate RECIPE.yaml --rounds N`: the iterative RLAIF loop (sample -> judge -> version -> train -> evaluate)."""

from __future__ import annotations

import importlib.util
from typing import Optional

import typer

from rlaif.cli.common import StoreOption, console, err, fail
from rlaif.core.errors import RlaifError

EXAMPLE = """Run the iterative RLAIF loop of a recipe with an `iterate:` section (recipes/iterate.yaml).

Each round samples from the latest policy (round 1: the recipe's; then the model trained in the
round before), judges and filters the pairs into a dataset version, trains on it (DPO by default,
any `rlaif train` algorithm), and judges the new policy against the previous one on held-out
prompts: each round prints its win rate with a 95% interval. The loop stops early when the win
rate stops improving (iterate.early_stop). Every round's version descends from the round before
(`rlaif datasets lineage ID`).

The loop is resumable: its state is in STORE/loops/<loop id>/state.json, written after every step.
Run the same command again after a crash and finished steps are skipped (a finished round is never
retrained, a finished version never re-sampled); a larger --rounds goes on from the last round.

Example:

    rlaif iterate recipes/iterate.yaml --rounds 2 --no-prefect

    rlaif iterate recipes/iterate.yaml --rounds 3   # as a Prefect flow
"""


def iterate(
    recipe: str = typer.Argument(..., help="Recipe YAML with an `iterate:` section, e.g. recipes/iterate.yaml."),
    rounds: Optional[int] = typer.Option(
        None, "--rounds", min=1, help="Rounds to run (default: the recipe's iterate.rounds)."
    ),
    store: Optional[str] = StoreOption,
    no_prefect: bool = typer.Option(
        False,
        "--no-prefect",
        help="Run in this process without Prefect (the same steps and state); default: the Prefect flow `rlaif-iterate`.",
    ),
) -> None:
    """The iterative RLAIF loop: sample -> judge -> version -> train -> evaluate, per round."""
    from rlaif.config.settings import store_path
    from rlaif.loop.spec import load_loop
    from rlaif.pipeline.preflight import check_run

    try:  # everything checked before Prefect starts or anything is written
        parsed, _ = load_loop(recipe, rounds)
        where = store_path(parsed, store)
        check_run(parsed, where)
        if not no_prefect and importlib.util.find_spec("prefect") is None:
            err.print(
                "note: Prefect is not installed: running in this process (as with --no-prefect)", highlight=False
            )
            no_prefect = True
        if no_prefect:
            from rlaif.loop.iterate import run_loop

            run_loop(recipe, where, rounds, echo=_echo)
        else:
            _in_flow(recipe, str(where), rounds)
    except RlaifError as exc:
        fail(exc)


def _echo(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True, markup=False)


def _in_flow(recipe: str, store: str, rounds: Optional[int]) -> None:
    from rlaif.flows.server import prefect_api

    with prefect_api():  # PREFECT_API_URL, else the local server that runs share (flows/shared_server.py)
        from rlaif.flows.iterate import rlaif_iterate

        rlaif_iterate(recipe_path=recipe, store=store, rounds=rounds)
