"""`rlaif eval-policy`, `rlaif eval-rm` and `rlaif serve-reward`: evaluating and serving what was trained."""

from __future__ import annotations

from typing import Any, Optional

import typer

from rlaif.cli.common import StoreOption, console, emit, err, fail, folded_table
from rlaif.core.errors import RlaifError
from rlaif.core.gold_formats import FORMATS, UPSTREAM

f2 = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731


def _interval(ci: list[float] | None) -> str:
    return f" (95% {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""


GoldFormatOption = typer.Option(
    "rlaif",
    "--gold-format",
    help=f"The gold file's shape: {', '.join(FORMATS)} (the public sets' own rows, e.g. mt-bench-human for "
    f"{UPSTREAM['mt-bench-human']}; docs/judges.md lists them). Rows without a usable preference (ties, no majority) "
    "are skipped and counted by reason.",
)


GoldOption = typer.Option(
    ...,
    "--gold",
    help="Human-labelled pairs: a JSON Lines, Parquet or CSV file of `prompt` (text or messages), `chosen`, `rejected` "
    "(e.g. data/gold-sample.jsonl), or a Hub dataset: hub:ORG/NAME[@REVISION] (a public set's own rows: --gold-format).",
)
GoldLimitOption = typer.Option(None, "--limit", min=1, help="Use only the first N gold pairs (kept rows).")
GoldSplitOption = typer.Option(
    None, "--gold-split", help="With --gold hub:ORG/NAME: the split to read (default: train)."
)
GoldConfigOption = typer.Option(
    None, "--gold-config", help="With --gold hub:ORG/NAME: the dataset's configuration (subset), if it has several."
)


def gold_source(gold: str, gold_format: str, split: str | None, config: str | None):
    """The --gold options as a source (rlaif.config.prompt_source.GoldSource); a bad combination is an error saying which."""
    from pydantic import ValidationError

    from rlaif.config.prompt_source import GoldSource
    from rlaif.core.errors import InputError
    from rlaif.core.gold_formats import converter

    converter(gold_format)  # an unknown name lists the known ones
    try:
        return GoldSource.of(gold, gold_format, split, config)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InputError(
            "--gold", problem["msg"], fix=(problem.get("ctx") or {}).get("fix", "--gold FILE or --gold hub:ORG/NAME")
        ) from None


def gold_line(gold: dict[str, Any]) -> str | None:
    """What the gold file's conversion kept and skipped (None for an rlaif file with nothing skipped).

    >>> gold_line({"format": "pandalm", "rows": 8, "skipped": {"no_majority": 1, "tie": 2}})
    'gold: 8 pairs kept from pandalm rows; skipped: no_majority 1, tie 2'
    """
    fmt, skipped = gold.get("format", "rlaif"), gold.get("skipped") or {}
    if fmt == "rlaif" and not skipped:
        return None
    parts = ", ".join(f"{reason} {n}" for reason, n in skipped.items()) or "none"
    return f"gold: {gold.get('rows')} pairs kept from {fmt} rows; skipped: {parts}"


def _quality_line(quality: dict[str, Any] | None, note: str | None) -> str:
    from rlaif.judges.measure import summary_line

    return summary_line(quality) or note or "judge quality unknown"


def eval_policy(
    model: str = typer.Option(
        ..., "--model", help="The new policy: a store model id, a built-in alias or a model folder."
    ),
    baseline: str = typer.Option(..., "--baseline", help="The policy it is compared with (same kinds of name)."),
    prompts: str = typer.Option(..., "--prompts", help="Held-out prompts, JSON Lines (`prompt` text or `messages`)."),
    judge: str = typer.Option(
        ...,
        "--judge",
        help="Recipe YAML whose judge compares the answers (its first policy gives the engine and sampling settings).",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
    temperature: Optional[float] = typer.Option(
        None, "--temperature", min=0, help="Sampling temperature of both policies (default: the recipe's)."
    ),
    baseline_temperature: Optional[float] = typer.Option(
        None, "--baseline-temperature", min=0, help="Temperature of the baseline only (default: --temperature)."
    ),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", min=1, help="Most new tokens per answer (default: the recipe's)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of which policy is shown first per prompt."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result on stdout."),
    store: Optional[str] = StoreOption,
) -> None:
    """Judged win rate of a new policy over a baseline on held-out prompts: both orders, position
    bias removed, ties count half, with a Wilson 95% interval and the judge's own quality on human
    labels (the recipe's judge.gold) beside it. Model calls go through the store's request cache.

    Example:

        rlaif eval-policy --model demo-dpo-0123456789ab --baseline smollm2-135m \\
            --prompts data/prompts.jsonl --judge recipes/demo.yaml --limit 50
    """
    from rlaif.config.recipe import load_recipe
    from rlaif.config.settings import store_path
    from rlaif.core.inputs import validate_prompts
    from rlaif.pipeline.preflight import check_endpoints, check_judge, check_models
    from rlaif.training.eval_policy import evaluate_policy, policy_spec

    try:
        recipe = load_recipe(judge)
        where = store_path(recipe, store)
        validate_prompts(prompts, recipe.prompts.system, limit, fix="check the file given to --prompts")
        specs = [
            (f"--{flag} '{name}'", policy_spec(recipe, flag, name, where, {}))
            for flag, name in (("model", model), ("baseline", baseline))
        ]
        check_endpoints(check_models(specs))
        check_judge(recipe, where)
        result = evaluate_policy(
            model, baseline, prompts, recipe, where, limit, seed, temperature, baseline_temperature, max_tokens
        )
    except RlaifError as exc:
        fail(exc)
    if as_json:
        return emit(result)
    calls = result["calls"]
    lines = [
        f"{model} vs {baseline} on {result['prompts']['rows']} prompts, judged by {judge} ({result['judge']['type']}, {result['judge']['model']})",
        f"win rate {f2(result['win_rate'])}{_interval(result['win_rate_ci95'])}: {result['wins']} wins, {result['losses']} losses, "
        f"{result['ties']} ties ({result['identical']} identical answers) over {result['n']} judged; {result['failed']} failed (left out)",
        f"judge: {_quality_line(result['judge_quality'], result['judge_quality_note'])}",
        f"calls: live {calls['live']}, cached {calls['cached']}, failed {calls['failed']}",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def eval_rm(
    model: str = typer.Option(
        ...,
        "--model",
        help="The reward model: a store model id or a model folder (AutoModelForSequenceClassification, one label).",
    ),
    gold: str = GoldOption,
    limit: Optional[int] = GoldLimitOption,
    gold_format: str = GoldFormatOption,
    gold_split: Optional[str] = GoldSplitOption,
    gold_config: Optional[str] = GoldConfigOption,
    judge: Optional[str] = typer.Option(
        None, "--judge", help="Also evaluate this recipe's judge on the same rows, side by side."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Pairs scored per forward pass."),
    max_length: int = typer.Option(
        512, "--max-length", min=8, help="Most tokens of prompt + response (cut from the left)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result on stdout."),
    store: Optional[str] = StoreOption,
) -> None:
    """A reward model's accuracy on human-labelled pairs (it should score `chosen` above `rejected`),
    with a Wilson 95% interval, beside 'pick the longer response' and - for a model of the store -
    the quality of the judge that labelled its training data.

    Example:

        rlaif eval-rm --model demo-rm-0123456789ab --gold data/gold-sample.jsonl

        rlaif eval-rm --model demo-rm-0123456789ab --gold hub:allenai/reward-bench \\
            --gold-split filtered --gold-format reward-bench
    """
    from rlaif.config.recipe import load_recipe
    from rlaif.config.settings import store_path
    from rlaif.judges.evaluate import load_gold_source
    from rlaif.pipeline.preflight import check_judge
    from rlaif.training.eval_rm import evaluate_rm, reward_model_path

    try:
        recipe = load_recipe(judge) if judge else None
        where = store_path(recipe, store)
        source = gold_source(gold, gold_format, gold_split, gold_config)
        load_gold_source(source, where, limit)
        reward_model_path(model, where)
        if recipe is not None:
            check_judge(recipe, where)
        result = evaluate_rm(model, source, where, limit, recipe, batch_size=batch_size, max_length=max_length)
    except RlaifError as exc:
        fail(exc)
    if as_json:
        return emit(result)
    for line in rm_lines(result, gold):
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def rm_lines(result: dict[str, Any], gold: str) -> list[str]:
    """The text report of `rlaif eval-rm`."""
    lines = [
        f"{result['model']} on {result['n']} human-labelled pairs of {gold}",
        f'accuracy {f2(result["accuracy"])}{_interval(result["accuracy_ci95"])}; "pick the longer" {f2(result["baseline_longer"])}, '
        f'"pick the shorter" {f2(result["baseline_shorter"])}; the reward model picks the longer {f2(result["prefers_longer"])}',
    ]
    conversion = gold_line(result.get("gold") or {})
    if conversion:
        lines.append(conversion)
    trained = result.get("trained_on")
    if trained:
        from rlaif.judges.measure import summary_line

        quality = summary_line(trained.get("judge_quality")) or "judge quality unknown: its recipe had no judge.gold"
        lines.append(
            f"trained ({trained.get('algorithm')}) on {trained.get('dataset')}, labelled by a judge with: {quality}"
        )
    judge = result.get("judge")
    if judge:
        lines.append(
            f"judge of {judge['recipe']} ({judge['model']}) on the same rows: agreement {f2(judge['agreement'])}{_interval(judge['agreement_ci95'])}"
        )
    return lines


def serve_reward(
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="A reward model: a store model id or a folder (AutoModelForSequenceClassification, one label).",
    ),
    judge: Optional[str] = typer.Option(
        None,
        "--judge",
        help="A recipe YAML whose judge gives the reward (P(response beats a baseline), position-debiased).",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on (0.0.0.0: every interface; then requests need a token: $RLAIF_REWARD_TOKEN, else one made and printed).",
    ),
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    device: Optional[str] = typer.Option(
        None, "--device", help="cpu or cuda for a reward model (default: cuda when available)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Responses per forward pass of a reward model."),
    max_length: int = typer.Option(
        512, "--max-length", min=8, help="Most tokens of prompt + response for a reward model (cut from the left)."
    ),
    labels_as_baselines: bool = typer.Option(
        False,
        "--labels-as-baselines",
        help='With --judge: OpenRLHF\'s `labels` are reference responses the judge compares against (off: labels are ignored; in RLVR data they are bare answers such as "42").',
    ),
    timeout: float = typer.Option(
        600.0,
        "--timeout",
        min=1.0,
        help="Seconds a request may wait for its turn and be scored: past it, 503 (still waiting; Retry-After) or 504 (being scored).",
    ),
    store: Optional[str] = StoreOption,
) -> None:
    """Serve a reward model or a judge over HTTP for other RL trainers: POST /get_reward in
    OpenRLHF's remote reward model shape ({"query", "prompts", "labels"} -> {"rewards", "scores",
    "extra_logs"}), also {"prompts", "responses"}; verl: custom_reward_function.path=rlaif/training/reward_server.py
    (see its docstring). GET /health answers when it is ready.

    Example: rlaif serve-reward --model demo-rm-0123456789ab --port 5000
    """
    try:
        service, where = build_service(model, judge, store, device, batch_size, max_length, labels_as_baselines)
    except RlaifError as exc:
        fail(exc)
    from rlaif.training.reward_server import TOKEN_ENV, TOKEN_FIX, make_server, server_token

    token, made = server_token(host)
    try:
        server = make_server(service, host, port, token=token, timeout_s=timeout)
    except OSError as exc:
        err.print(
            f"[bold red]error:[/] cannot listen on {host}:{port} ({exc.strerror or exc}) - choose another --port",
            highlight=False,
        )
        raise typer.Exit(2) from None
    err.print(
        f"serving {service.kind} {service.name} (store {where}) on http://{host}:{port}/get_reward",
        highlight=False,
        markup=False,
    )
    if made:  # a host other than loopback: never an open endpoint; the user's own terminal sees the token once
        err.print(
            f"token (made now; set ${TOKEN_ENV} to choose it): {token}\nclients: {TOKEN_FIX}",
            highlight=False,
            markup=False,
        )
    elif token:
        err.print(f"requests need the token in ${TOKEN_ENV}: {TOKEN_FIX}", highlight=False, markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def build_service(
    model: Optional[str],
    judge: Optional[str],
    store: Optional[str],
    device: Optional[str],
    batch_size: int,
    max_length: int,
    labels_as_baselines: bool = False,
):
    """(the reward service, the store) for `serve-reward`; exactly one of --model and --judge; --labels-as-baselines only with --judge."""
    from rlaif.config.settings import store_path
    from rlaif.core.errors import InputError
    from rlaif.training.reward_server import RewardService

    if (model is None) == (judge is None):
        raise InputError(
            "serve-reward",
            "give exactly one of --model (a reward model) or --judge (a recipe YAML)",
            field="--model/--judge",
        )
    if labels_as_baselines and judge is None:
        raise InputError(
            "serve-reward",
            "a reward model scores a response on its own and takes no baseline: drop --labels-as-baselines, or serve a --judge",
            field="--labels-as-baselines",
        )
    if judge is not None:
        from rlaif.config.recipe import load_recipe
        from rlaif.pipeline.preflight import check_judge
        from rlaif.training.rewards import judge_reward

        recipe = load_recipe(judge)
        where = store_path(recipe, store)
        check_judge(recipe, where)
        reward = judge_reward(judge, where, failed_reward=float("nan"))
        return RewardService(
            reward, "judge", f"{judge} ({recipe.judge.model})", labels_as_baselines=labels_as_baselines
        ), where
    from rlaif.training.eval_rm import reward_model_path
    from rlaif.training.rewards import reward_model_scorer

    where = store_path(None, store)
    path = reward_model_path(model, where)
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return RewardService(
        reward_model_scorer(path, device=device, batch_size=batch_size, max_length=max_length), "reward model", model
    ), where


def eval_judge(
    recipes: list[str] = typer.Argument(
        ...,
        help="Recipe YAML file(s) whose judges are evaluated side by side, e.g. recipes/demo.yaml recipes/listwise.yaml.",
    ),
    gold: str = GoldOption,
    limit: Optional[int] = GoldLimitOption,
    gold_format: str = GoldFormatOption,
    gold_split: Optional[str] = GoldSplitOption,
    gold_config: Optional[str] = GoldConfigOption,
    seed: int = typer.Option(0, "--seed", help="Seed of the per-row A/B order (which response is shown first)."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print only the JSON result on stdout (a list for several recipes; progress goes to stderr).",
    ),
    store: Optional[str] = StoreOption,
) -> None:
    """Measure judges against human labels: agreement (95% interval), kappa, position consistency,
    length preference and calibration, beside the 'always longer' / 'always shorter' rules. With
    several recipes, a small leaderboard: one column per judge, best agreement first. Calls go
    through the store's request cache; each result is also saved under STORE/evals/.

    Example:

        rlaif eval-judge recipes/demo.yaml recipes/listwise.yaml \\
            --gold data/gold-sample.jsonl

        rlaif eval-judge recipes/demo.yaml --gold pl.jsonl --gold-format pandalm
    """
    from rlaif.config.recipe import load_recipe
    from rlaif.config.settings import store_path
    from rlaif.judges.evaluate import evaluate_judge, leaderboard_rows, load_gold_source
    from rlaif.pipeline.preflight import check_judge

    try:
        parsed = [
            load_recipe(path) for path in recipes
        ]  # every recipe and the gold file checked before any model loads
        source = gold_source(gold, gold_format, gold_split, gold_config)
        load_gold_source(source, store_path(parsed[0], store), limit)
        for recipe in parsed:
            check_judge(recipe, store_path(recipe, store))
        results = [evaluate_judge(recipe, source, store_path(recipe, store), limit, seed) for recipe in parsed]
    except RlaifError as exc:
        fail(exc)
    if as_json:
        return emit(results[0] if len(results) == 1 else results)
    labels = [f"{path} ({recipe.judge.type}, {recipe.judge.model})" for path, recipe in zip(recipes, parsed)]
    header, rows = leaderboard_rows(results, labels)
    table = folded_table(header, f"judges on {gold}" + (f" (first {limit} rows)" if limit else ""))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    conversion = gold_line(results[0]["gold"])
    if conversion:
        console.print(conversion, highlight=False, soft_wrap=True, markup=False)
    for label, result in zip(labels, results):
        calls = result["calls"]
        console.print(
            f"{label}: n {result['n']} rows judged, {result['failures']} failed (metrics exclude them); "
            f"calls: live {calls['live']}, cached {calls['cached']}, failed {calls['failed']}; saved: {result['path']}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
