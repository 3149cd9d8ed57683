"""The iterative RLAIF loop (`rlaif iterate`, the Prefect flow `rlaif-iterate` in flows/iterate.py).

Each round k:

    sample from the latest policy (round 1: the recipe's; round k: the model trained in round k-1,
    by its store model id) -> judge -> filter -> a dataset version (`rlaif.pipeline.runner.run_recipe`)
    -> train on it from the latest policy (`rlaif.training.driver.train`, DPO by default)
    -> judge NEW against the policy it replaces on held-out prompts (`evaluate_policy`)
    -> stop early when the win rate stops improving (`rlaif.loop.spec.stop_reason`)

Lineage: round k's version is made by a recipe whose policy is round k-1's model id, and that
model's manifest names round k-1's version (and its own base model), so `rlaif datasets lineage`
walks version k -> model k-1 -> version k-1 -> ... back to the first round.

Resume: the loop's state is `STORE/loops/<loop id>/state.json`, written atomically after every
step of every round (version id, model id, eval figures; `round-<k>-eval.json` holds the full
evaluation). A re-run of the same loop (same recipe content, `iterate:` settings, prompt files)
skips every finished step: a version in the state is not sampled again and a model in the state
is not trained again; a step cut short by a crash runs again, and what it had already done is
cached anyway (request cache; content-addressed versions and models). The steps take and return
plain values, so flows/iterate.py runs each as a Prefect task (`run_step`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlaif.config.recipe import Recipe
from rlaif.core.errors import StoreError
from rlaif.loop.spec import IterateSpec, load_loop, replaced_index, stop_reason, train_settings

LOOPS = "loops"
EVAL_KEYS = (
    "n",
    "wins",
    "losses",
    "ties",
    "identical",
    "win_rate",
    "win_rate_ci95",
    "mean_p_new",
    "failed",
    "failures",
    "calls",
)
Echo = Callable[[str], None]
RunStep = Callable[..., Any]  # run_step(kind, fn, *args) -> fn(*args), wherever the executor runs it


@dataclass
class Loop:
    path: str
    store: Path
    recipe: Recipe
    spec: IterateSpec
    loop_id: str

    @property
    def folder(self) -> Path:
        return self.store / LOOPS / self.loop_id

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha(path: str | None) -> str | None:
    from rlaif.core.inputs import file_sha256

    return file_sha256(Path(path)) if path and Path(path).is_file() else None


def loop_id_of(recipe: Recipe, spec: IterateSpec) -> str:
    """`<recipe name>-<12 hex>` of what decides the loop's rounds (not how many: `--rounds` may grow)."""
    from rlaif.core.schema import content_hash
    from rlaif.store.versions import hashed_recipe

    key = {
        "recipe": hashed_recipe(recipe.model_dump(mode="json")),
        "prompts_sha256": _sha(recipe.prompts.path),
        "iterate": spec.model_dump(mode="json", exclude={"rounds"}),
        "config_sha256": _sha(spec.config),
        "eval_sha256": _sha(spec.eval.prompts),
    }
    return f"{recipe.name[:51]}-{content_hash(key, 12)}"


def open_loop(path: str | Path, store: str | Path, rounds: int | None = None) -> Loop:
    recipe, spec = load_loop(path, rounds)
    return Loop(str(path), Path(store), recipe, spec, loop_id_of(recipe, spec))


def load_state(loop: Loop) -> dict[str, Any]:
    """The loop's state from the store, or a new one (not written until the first step)."""
    if loop.state_path.is_file():
        try:
            return json.loads(loop.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{loop.state_path}: unreadable loop state ({exc}) - delete the folder {loop.folder} to start the loop again"
            ) from None
    return {
        "loop": loop.loop_id,
        "recipe": loop.path,
        "name": loop.recipe.name,
        "created_at": _now(),
        "rounds": [],
        "stopped": None,
    }


def save_state(loop: Loop, state: dict[str, Any]) -> None:
    from rlaif.store.atomic import write_json_atomic

    state["updated_at"] = _now()
    write_json_atomic(loop.state_path, state)


def round_recipe(recipe: Recipe, spec: IterateSpec, number: int, policy_model: str) -> Recipe:
    """Round `number`'s recipe: the replaced policy samples from `policy_model`; versions named `<name>-r<k>`."""
    index = replaced_index(recipe, spec)
    policies = list(recipe.policies)
    policies[index] = policies[index].model_copy(update={"model": policy_model})
    return recipe.model_copy(update={"name": f"{recipe.name[:58]}-r{number}", "policies": policies})


# The steps: plain values in, plain values out (a Prefect task each in flows/iterate.py).


def sample_round(path: str, store: str, number: int, policy_model: str) -> dict[str, Any]:
    """Sample, judge, filter and version round `number`'s data (a finished version is found, not re-made)."""
    from rlaif.pipeline.runner import run_recipe

    recipe, spec = load_loop(path)
    version_id, created, manifest, _ = run_recipe(round_recipe(recipe, spec, number, policy_model), store)
    counts = manifest.get("counts", {})
    return {
        "version": version_id,
        "created": created,
        "kept": counts.get("kept"),
        "in": counts.get("in"),
        "calls": manifest.get("calls"),
    }


def train_round(path: str, store: str, version_id: str, base_model: str, progress: bool = True) -> dict[str, Any]:
    """Train the round's model on its version from the latest policy (the same training again is found, not re-run)."""
    from rlaif.training.driver import train

    _, spec = load_loop(path)
    result = train(store, version_id, spec.algorithm, base_model, train_settings(spec, path), progress=progress)
    return {
        "model": result.model_id,
        "existed": result.existed,
        "seconds": round(result.seconds, 2),
        "metrics": result.metrics,
    }


def eval_round(path: str, store: str, new_model: str, baseline: str) -> dict[str, Any]:
    """Judged win rate of `new_model` over `baseline` on the held-out prompts (both orders, debiased)."""
    from rlaif.training.eval_policy import evaluate_policy

    recipe, spec = load_loop(path)
    judge_recipe = recipe.model_copy(update={"policies": [recipe.policies[replaced_index(recipe, spec)]]})
    ev = spec.eval
    return evaluate_policy(
        new_model,
        baseline,
        ev.prompts,
        judge_recipe,
        store,
        limit=ev.limit,
        seed=ev.seed,
        temperature=ev.temperature,
        max_tokens=ev.max_tokens,
    )


def call(kind: str, fn: Callable[..., Any], *args: Any) -> Any:
    """The in-process executor of a step."""
    return fn(*args)


# The driver: which steps a round still needs, in order, with the state saved after each.


def win_line(number: int, figures: dict[str, Any]) -> str:
    """One round's win rate with its interval, as printed.

    >>> win_line(2, {"win_rate": 0.625, "win_rate_ci95": [0.31, 0.86], "n": 8, "wins": 5, "losses": 3, "ties": 0, "failed": 0, "model": "m", "baseline": "b"})
    'round 2: win rate 0.625 (95% CI 0.31-0.86) of m over b on 8 held-out prompts (5 wins, 3 losses, 0 ties, 0 failed)'
    """
    rate, ci = figures.get("win_rate"), figures.get("win_rate_ci95")
    shown = "n/a" if rate is None else f"{rate:.3g}"
    interval = f"95% CI {ci[0]:.2f}-{ci[1]:.2f}" if ci else "no interval"
    count = {key: figures.get(key) or 0 for key in ("n", "wins", "losses", "ties", "failed")}
    counts = f"{count['wins']} wins, {count['losses']} losses, {count['ties']} ties, {count['failed']} failed"
    return f"round {number}: win rate {shown} ({interval}) of {figures.get('model')} over {figures.get('baseline')} on {count['n']} held-out prompts ({counts})"


def _entry(state: dict[str, Any], number: int, policy: str) -> tuple[dict[str, Any], bool]:
    """Round `number`'s record (a new one when it had not started), and whether it is new."""
    if len(state["rounds"]) >= number:
        return state["rounds"][number - 1], False
    entry = {
        "round": number,
        "policy": policy,
        "started_at": _now(),
        "version": None,
        "model": None,
        "eval": None,
        "finished_at": None,
    }
    state["rounds"].append(entry)
    return entry, True


def _version_step(loop: Loop, entry: dict, run_step: RunStep, echo: Echo) -> None:
    from rlaif.store.versions import versions_dir

    n = entry["round"]
    if entry["version"] and (versions_dir(loop.store) / entry["version"] / "manifest.json").is_file():
        echo(f"round {n}: version {entry['version']} (reused: not sampled again)")
        return
    out = run_step("sample", sample_round, loop.path, str(loop.store), n, entry["policy"])
    entry.update(version=out["version"], kept=out["kept"], calls=out["calls"], version_created=out["created"])
    calls = out["calls"] or {}
    echo(
        f"round {n}: version {out['version']} from {entry['policy']}: {out['kept']} pairs kept of {out['in']} "
        f"(calls live {calls.get('live')}, cached {calls.get('cached')}, failed {calls.get('failed')})"
    )


def _train_step(loop: Loop, entry: dict, run_step: RunStep, echo: Echo) -> None:
    from rlaif.store.models import find_model

    n = entry["round"]
    if entry["model"] and find_model(loop.store, entry["model"]) is not None:
        echo(f"round {n}: model {entry['model']} (reused: not retrained)")
        return
    out = run_step("train", train_round, loop.path, str(loop.store), entry["version"], entry["policy"])
    entry.update(model=out["model"], trained=not out["existed"], train_seconds=out["seconds"], metrics=out["metrics"])
    how = (
        "already in the store (reused: not retrained)"
        if out["existed"]
        else f"trained {loop.spec.algorithm} in {out['seconds']:.1f} s"
    )
    echo(f"round {n}: model {out['model']} {how}")


def _eval_step(loop: Loop, entry: dict, run_step: RunStep) -> None:
    from rlaif.store.atomic import write_json_atomic

    out = run_step("eval", eval_round, loop.path, str(loop.store), entry["model"], entry["policy"])
    write_json_atomic(loop.folder / f"round-{entry['round']}-eval.json", out)
    entry["eval"] = {key: out.get(key) for key in ("model", "baseline", *EVAL_KEYS)}


def run_round(loop: Loop, state: dict, entry: dict, run_step: RunStep, echo: Echo) -> None:
    """The steps round `entry` still needs, the state saved after each."""
    for step in (_version_step, _train_step):
        step(loop, entry, run_step, echo)
        save_state(loop, state)
    if entry["eval"] is None:
        _eval_step(loop, entry, run_step)
    entry["finished_at"] = entry["finished_at"] or _now()
    save_state(loop, state)


def run_loop(
    path: str | Path,
    store: str | Path,
    rounds: int | None = None,
    run_step: RunStep = call,
    echo: Echo = print,
    on_round: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the loop of the recipe at `path` in `store`; returns its state with `final_model`."""
    loop = open_loop(path, store, rounds)
    state = load_state(loop)
    plural = "s" if loop.spec.rounds > 1 else ""
    echo(
        f"loop {loop.loop_id}: up to {loop.spec.rounds} round{plural} of {loop.spec.algorithm} (state: {loop.state_path})"
    )
    for number in range(1, loop.spec.rounds + 1):
        if state.get("stopped"):
            break
        previous = (
            state["rounds"][number - 2]["model"]
            if number > 1
            else loop.recipe.policies[replaced_index(loop.recipe, loop.spec)].model
        )
        entry, new = _entry(state, number, previous)
        if new:
            save_state(loop, state)  # "round k started": visible before its first step
        if entry["finished_at"]:
            echo(
                f"round {number}: done before (version {entry['version']}, model {entry['model']}: reused, not retrained)"
            )
        else:
            echo(f"round {number}/{loop.spec.rounds}: policy {entry['policy']}")
            run_round(loop, state, entry, run_step, echo)
        echo(win_line(number, entry["eval"]))
        if on_round is not None:
            on_round(entry)
        _check_stop(loop, state, number, echo)
    return _finish(loop, state, echo)


def _check_stop(loop: Loop, state: dict, number: int, echo: Echo) -> None:
    reason = stop_reason(loop.spec.early_stop, [entry["eval"] for entry in state["rounds"][:number]])
    if reason and number < loop.spec.rounds:
        state["stopped"] = {"round": number, "reason": reason, "rule": loop.spec.early_stop.rule}
        save_state(loop, state)
        echo(f"stopped early after round {number}: {reason}")


def _finish(loop: Loop, state: dict, echo: Echo) -> dict[str, Any]:
    done = [entry for entry in state["rounds"] if entry.get("finished_at")]
    state["final_model"] = done[-1]["model"] if done else None
    echo(
        f"final model: {state['final_model']} ({len(done)} round{'s' if len(done) != 1 else ''} done; state {loop.state_path})"
    )
    return {**state, "state_path": str(loop.state_path), "store": str(loop.store)}
