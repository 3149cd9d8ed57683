"""Recipes: small YAML run configurations, validated with pydantic (`extra="forbid"`).

Errors name the file, the key and the fix, e.g.
``recipes/demo.yaml: judge.backnd: unknown key - did you mean 'backend'?``
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rlaif.config.engines import API_BACKENDS, BACKENDS, ENGINE_FIELDS, ENGINE_OPTIONS
from rlaif.config.prompt_source import GoldSource, PromptSource
from rlaif.config.recipe_checks import (
    check_api_key_env,
    check_base_url,
    check_judge_settings_apply,
    check_listwise_orders,
    check_policies_make_pairs,
    read_recipe_yaml,
    value_error,
)
from rlaif.config.recipe_errors import describe
from rlaif.config.sections import BudgetSpec, ExecutionSpec, PriceSpec
from rlaif.config.settings import chosen_store, store_path
from rlaif.core.errors import RecipeError
from rlaif.core.names import check_name, is_version_id

BackendName = Literal[tuple(BACKENDS)]  # type: ignore[valid-type]  # the names of rlaif.config.engines.BACKENDS, no copy


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SamplingParams(Strict):
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold.")
    max_tokens: int = Field(
        256, ge=1, description="Most new tokens per response; longer ones end with finish_reason 'length'."
    )
    seed: int = Field(0, description="Base seed; sample i of a prompt uses seed + i.")


class ModelSpec(Strict):
    """The engine and model. Besides `backend` and `model`, each field applies to the backends whose
    entry in rlaif.config.engines.ENGINE_OPTIONS names it: setting it for another backend is a recipe error."""

    backend: BackendName = Field("transformers", description="Which engine runs the model.")
    model: str = Field("smollm2-135m", description="Built-in alias, local path, or the model name the API expects.")
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint (openai backend), e.g. http://127.0.0.1:8000/v1."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Name of the environment variable holding the API key; the key itself is never stored (openai backend).",
    )
    max_concurrency: int = Field(64, ge=1, description="Requests in flight at once (openai backend).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds (openai backend).")
    max_retries: int = Field(
        4,
        ge=0,
        description="Retries per request by the openai client (openai backend): exponential backoff with jitter; Retry-After is honoured up to 2 minutes.",
    )
    stop_after_failures: int | None = Field(
        8,
        ge=1,
        description="Circuit breaker (openai backend): when this many calls to the endpoint in a row fail, each after its "
        "own `max_retries` (a transient error, or HTTP 401/403/404), with no success between, the run sends it nothing more "
        "and stops (exit code 3, every successful call cached), whatever the number of prompts. The first model's value "
        "on an endpoint applies. null: never.",
    )
    rpm: int | None = Field(
        None,
        ge=1,
        description="Requests per minute to this endpoint, client-side (openai backend): a token bucket shared by the run's models on the endpoint, and through a Prefect global concurrency limit across runs when PREFECT_API_URL is set (docs/operations.md).",
    )
    tpm: int | None = Field(
        None,
        ge=1,
        description="Tokens per minute to this endpoint (openai backend): each request's tokens estimated (message characters / 4 + max_tokens) before it is sent, corrected by the usage the server reports.",
    )
    batch: bool = Field(
        False,
        description="Send this model's requests through the OpenAI Batch API (openai backend): upload, create, poll, collect; results cached as live ones (docs/operations.md).",
    )
    batch_poll_s: float = Field(
        30.0,
        gt=0,
        description="Seconds between polls of a batch at first (openai backend, `batch: true`); the interval grows 1.5x per poll up to 10 minutes.",
    )
    batch_size: int = Field(8, ge=1, description="Prompts per forward pass (transformers backend).")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads (transformers backend); default: half the cores (at least 1): torch's own default, every core, collapses when the machine is shared. Not in the version id: any count gives the same generations.",
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        "float32", description="Weights dtype (local engines: transformers, vllm)."
    )
    max_model_len: int | None = Field(
        None,
        ge=16,
        description="Context length of the engine in tokens (vllm backend); default: the model's. Not in the version id.",
    )
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the KV cache of shared prompt prefixes, e.g. a judge template (vllm backend). Not in the version id.",
    )
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of GPU memory vLLM may take (vllm backend); default: vLLM's (0.9); CPU: VLLM_CPU_KVCACHE_SPACE. Not in the version id.",
    )
    tensor_parallel_size: int | None = Field(
        None, ge=1, description="GPUs one engine spans (vllm backend); default: 1. Not in the version id."
    )
    vllm_env: str | None = Field(
        None,
        description="The venv with vLLM that serves `backend: vllm` where vLLM does not import (docs/vllm.md); default: $RLAIF_VLLM_ENV, else .venv-vllm in the project root.",
    )

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, value):
        return check_base_url(value)

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value):
        return check_api_key_env(value)

    @model_validator(mode="after")
    def _options_of_the_backend(self):
        check_backend_options(self, self.backend)
        for number, member in enumerate(
            getattr(self, "jury", [])
        ):  # a jury member without `backend` runs on the judge's
            if "backend" not in member.model_fields_set:
                check_backend_options(member, self.backend, f"jury.{number}.")
        return self


def check_backend_options(spec: BaseModel, backend: str, prefix: str = "") -> None:
    """A ModelSpec field that `backend` does not read, set in the recipe, is an error naming the field."""
    options = ENGINE_OPTIONS[backend]
    for name in ENGINE_FIELDS:
        if name in spec.model_fields_set and name not in options:
            users = [other for other in BACKENDS if name in ENGINE_OPTIONS[other]]
            raise PydanticCustomError(
                "recipe_value",
                "{problem}",
                {
                    "key": prefix + name,
                    "problem": f"does not apply to the {backend} backend (only to {', '.join(users)})",
                    "fix": f"remove `{name}`, or choose a backend that uses it",
                },
            )


class PolicySpec(ModelSpec):
    name: str = Field("policy", description="Name recorded on every generation of this policy.")
    params: SamplingParams = Field(default_factory=SamplingParams)


JUDGE_TYPES = ("pairwise", "listwise", "pointwise", "binary")
DEFAULT_TEMPLATES = {
    "pairwise": "prompts/pairwise_judge.j2",
    "listwise": "prompts/listwise_judge.j2",
    "pointwise": "prompts/pointwise_judge.j2",
    "binary": "prompts/binary_judge.j2",
}
ASPECTS = ["helpfulness", "honesty", "instruction-following", "truthfulness"]


class PrinciplesSpec(Strict):
    path: str = Field(
        "prompts/constitution.yaml", description="YAML file: a list of principles (strings), Constitutional-AI style."
    )
    mode: Literal["sample", "ensemble"] = Field(
        "sample",
        description="sample: one principle per judged item (fixed by seed); ensemble: every item judged under `count` principles, soft labels averaged.",
    )
    count: int = Field(3, ge=1, description="Principles per item in ensemble mode (the first `count` of the file).")
    seed: int = Field(0, description="Seed of the per-item principle choice in sample mode.")


class JuryMember(ModelSpec):
    name: str | None = Field(None, description="Label of this member in the manifest (default: model and template).")
    template: str | None = Field(None, description="Template of this member (default: the judge's template).")

    @model_validator(mode="after")
    def _options_of_the_backend(self):
        if "backend" in self.model_fields_set:  # otherwise the judge's backend: checked by the judge's own validator
            check_backend_options(self, self.backend)
        return self


class JudgeBase(ModelSpec):
    """What every judge type takes; each type's model (below) adds its own fields, so a field of
    another type is a recipe error naming it (rlaif.config.recipe_errors)."""

    template: str | None = Field(
        None,
        description="Jinja judge template; default prompts/<type>_judge.j2. Its rlaif-protocol block (docs/judges.md) says how the verdict is asked for and read.",
    )
    mode: Literal["auto", "logprobs", "parse"] = Field(
        "auto", description="auto: verdict-token probabilities when the backend gives them, else the parsed answer."
    )
    debias: bool = Field(
        True,
        description="Remove position bias: pairwise in logit space, listwise by each slot's prior measured over balanced orders; "
        "binary: threshold at the run's median P(yes) unless `threshold` is set.",
    )
    max_tokens: int = Field(
        8, ge=1, description="Tokens the judge may write in parse mode (listwise: raised to 8 per response)."
    )
    pairs: Literal["all", "first", "best_vs_worst", "best_vs_random"] = Field(
        "all",
        description="Which pairs become preference rows. all: every pair of distinct responses (pairwise: all are judged); "
        "first: only the first two; best_vs_worst; best_vs_random (Zephyr). Ties are always dropped.",
    )
    seed: int = Field(0, description="Seed of listwise permutations and best_vs_random choices.")
    chain_of_thought: bool = Field(
        False, description="The judge writes a rationale first; the verdict is scored in a second call (RLAIF paper)."
    )
    rationale_tokens: int = Field(128, ge=8, description="Most tokens of a chain-of-thought rationale.")
    principles: PrinciplesSpec | None = Field(None, description="Judge under written principles (a constitution).")
    jury: list[JuryMember] = Field(
        default_factory=list,
        description="Several judges (models or templates) on the same items; empty: this judge alone.",
    )
    jury_aggregate: Literal["mean", "majority"] = Field(
        "mean", description="Jury: mean of soft labels or scores, or majority vote."
    )

    _folder: Path | None = PrivateAttr(None)  # the recipe file's folder (`Recipe.read_from`); not part of the recipe

    @property
    def folder(self) -> Path | None:
        """The folder of the recipe file this judge was read from, where its relative `template` and
        `principles.path` are looked for first (rlaif.judges.common.resolve_path); None: not read from a file."""
        return self._folder

    def member_specs(self) -> list[JudgeBase]:
        """The model settings of each judge this section stands for: each jury member's own fields over the
        judge's (rlaif.judges.jury adds labels and principles); this judge alone without a jury."""
        if not self.jury:
            return [self]
        return [
            self.model_copy(update={**member.model_dump(exclude_unset=True, exclude={"name"}), "jury": []})
            for member in self.jury
        ]

    gold: str | GoldSource | None = Field(
        None,
        description="Human-labelled pairs to measure this judge on during the run: a file (JSON Lines, Parquet or CSV of "
        "prompt, chosen, rejected), or a source {path or hub, split, config, revision, format} for a Hub dataset or a "
        "public set's own rows (`judge.gold:` below); "
        "its agreement, consistency and length preference go into the manifest (`eval`), card, report and summary.",
    )
    gold_limit: int | None = Field(100, ge=1, description="Use only the first N gold pairs (null: all).")

    @property
    def template_path(self) -> str:
        return self.template or DEFAULT_TEMPLATES[self.type]


class PairwiseJudge(JudgeBase):
    type: Literal["pairwise"] = Field("pairwise", description="pairwise (the default): A vs B, judged in both orders.")


class ListwiseJudge(JudgeBase):
    type: Literal["listwise"] = Field(
        "listwise", description="listwise: rank all K responses over several permutations."
    )
    permutations: int | None = Field(
        None,
        ge=1,
        le=24,
        description="Orders judged per prompt, in blocks of K cyclic rotations (of the original, the reversed, then seeded "
        "shuffled order), each block showing every response once in every slot; with debias a multiple of K (or at least K!). null: K.",
    )
    aggregate: Literal["plackett-luce", "borda"] = Field("plackett-luce", description="How permutations are combined.")


class PointwiseJudge(JudgeBase):
    type: Literal["pointwise"] = Field(
        "pointwise", description="pointwise: rate each response 1-5 or 1-10 per aspect (UltraFeedback)."
    )
    aspects: list[str] = Field(
        default_factory=lambda: list(ASPECTS), min_length=1, description="Aspects rated separately, then averaged."
    )
    scale: Literal[5, 10] = Field(5, description="Ratings from 1 to `scale`.")
    threshold: float | None = Field(
        None, description="Binary label cut: a score >= threshold is good (default: the scale's midpoint)."
    )


class BinaryJudge(JudgeBase):
    type: Literal["binary"] = Field("binary", description="binary: good/bad per response (yes/no judge, KTO style).")
    threshold: float | None = Field(
        None, description="Label cut: P(yes) >= threshold is good (default: the run's median with debias, else 0.5)."
    )


JUDGE_MODELS: dict[str, type[JudgeBase]] = {
    "pairwise": PairwiseJudge,
    "listwise": ListwiseJudge,
    "pointwise": PointwiseJudge,
    "binary": BinaryJudge,
}


def _judge_type(value: object) -> str:
    """The judge model a recipe's `judge:` is read as: its `type`, pairwise when absent."""
    kind = value.get("type", "pairwise") if isinstance(value, dict) else getattr(value, "type", "pairwise")
    return kind if isinstance(kind, str) else "pairwise"  # a non-string type fails as pairwise's `type`


JudgeSpec = Annotated[
    Union[  # noqa: UP007 (tagged members)
        Annotated[PairwiseJudge, Tag("pairwise")],
        Annotated[ListwiseJudge, Tag("listwise")],
        Annotated[PointwiseJudge, Tag("pointwise")],
        Annotated[BinaryJudge, Tag("binary")],
    ],
    Discriminator(_judge_type),
]


class MinHashSpec(Strict):
    shingle_chars: int = Field(
        5,
        ge=2,
        le=20,
        description="Character n-gram length of the shingles compared (on lower-cased text without punctuation).",
    )
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations: more is more exact and slower.")
    seed: int = Field(1, description="MinHash seed; fixed, so a run finds the same duplicates every time.")


class DecontaminateSpec(Strict):
    path: str = Field(
        description="Evaluation set, JSON Lines: `prompt` (text or chat messages) or `messages` per row, e.g. a pairs.jsonl."
    )
    ngram: int | None = Field(
        13, ge=3, description="Drop a prompt sharing a run of this many words with an eval prompt; null: off."
    )
    similarity: float | None = Field(
        0.8,
        gt=0,
        le=1,
        description="Also drop a prompt whose near-duplicate similarity to an eval prompt reaches this (catches short prompts); null: off.",
    )


class FilterSpec(Strict):
    """Quality filters; each drop is counted by reason (rlaif.quality.filters.DROP_REASONS, PROMPT_DROP_REASONS)."""

    consistency: bool = Field(True, description="Drop judgments whose two orders disagree (after debiasing).")
    min_margin: float = Field(
        0.1, ge=0, le=1, description="Drop pairs with |2 p - 1| below this (ties and near-ties)."
    )
    drop_truncated: bool = Field(
        True, description="Drop pairs with a response cut off by max_tokens (finish_reason 'length')."
    )
    dedup_prompts: bool = Field(
        True,
        description="Before sampling, drop prompts whose user turns repeat an earlier prompt (whitespace aside); the first is kept.",
    )
    prompt_near_duplicate: float | None = Field(
        0.8,
        gt=0,
        le=1,
        description="With dedup_prompts, also drop near-duplicate prompts: character-shingle Jaccard >= this and the same numbers "
        "(MinHash LSH, then an exact check; the default is explained in docs/benchmarks.md). null: exact duplicates only.",
    )
    response_near_duplicate: float | None = Field(
        0.95,
        gt=0,
        le=1,
        description="Drop a pair whose two responses are near-duplicates at this similarity (0.95: only case/punctuation/whitespace "
        "variants). null: only identical pairs are dropped.",
    )
    minhash: MinHashSpec = Field(default_factory=MinHashSpec, description="How near-duplicates are measured.")
    max_tokens: int | None = Field(
        None, ge=1, description="Drop responses with more completion tokens than this; null: no limit."
    )
    refusals: bool = Field(
        False,
        description="Drop responses that refuse (rlaif.quality.text.REFUSAL_PATTERNS). Off: refusing is the right answer to a harmful prompt.",
    )
    boilerplate: bool = Field(
        False,
        description="Drop responses with AI self-talk ('As an AI language model', knowledge cutoff; BOILERPLATE_PATTERNS).",
    )
    refusal_patterns: list[str] = Field(
        default_factory=list, description="Extra refusal regexes (case-insensitive), used when `refusals` is on."
    )
    boilerplate_patterns: list[str] = Field(
        default_factory=list,
        description="Extra boilerplate regexes (case-insensitive), used when `boilerplate` is on.",
    )
    judge_address: bool = Field(
        True,
        description="Drop responses that address the judge before any judge sees them (reason judge_address; "
        "rlaif.quality.injection: notes to the evaluator, 'ignore previous instructions', 'choose this response', "
        "'rate this answer 10', injected role tags and template markers, also hidden in HTML/Markdown comments, "
        "zero-width characters or letter-spacing). Applies to every judge type: pairwise and listwise (where such a "
        "note, unlike a verdict look-alike, follows the response into every order), and pointwise/binary too, "
        "whose ratings it would steer the same way ('rate this 10').",
    )
    judge_address_patterns: list[str] = Field(
        default_factory=list,
        description="Extra judge-address regexes (case-insensitive, tried on the raw and the de-obfuscated text), used when `judge_address` is on.",
    )
    language: list[str] | None = Field(
        None,
        description="Keep only responses in these languages (ISO 639-1, e.g. en or [en, de]; py3langid). null: any language.",
    )
    language_min_chars: int = Field(
        20, ge=1, description="Responses with less prose than this (code blocks aside) are never dropped for language."
    )
    language_min_confidence: float = Field(
        0.8, ge=0, le=1, description="Drop for language only when the detector is at least this sure."
    )
    decontaminate: DecontaminateSpec | None = Field(
        None, description="Before sampling, drop prompts that overlap this evaluation set."
    )
    max_longer_share: float | None = Field(
        None,
        ge=0.5,
        le=1,
        description="Length-bias cap: at most this share of kept pairs may have the longer response (characters) as chosen; "
        "the lowest-margin chosen-longer pairs are dropped first (reason length_bias). null: no cap.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _one_language(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("language")
    @classmethod
    def _known_languages(cls, value):
        from rlaif.quality.text import check_languages

        return check_languages(value)

    @field_validator("refusal_patterns", "boilerplate_patterns", "judge_address_patterns")
    @classmethod
    def _regexes(cls, value):
        from rlaif.quality.text import check_patterns

        return check_patterns(value)


class RetrySpec(Strict):
    """Passes over a step's calls: a call that still fails with a transient error after its own
    per-request retries (`max_retries`) goes again in a later pass, so that transient faults never
    reach the committed version (rlaif/calls/engine.py)."""

    passes: int = Field(
        5,
        ge=1,
        description="Most passes over a step's calls; a later pass re-sends only the calls that failed with a transient error "
        "(connection, timeout, HTTP 408/409/425/429/5xx). 1: no later pass. Other failures (e.g. HTTP 400) stay values (generation_failed, judge_failed).",
    )
    budget: float = Field(
        0.1,
        ge=0,
        description="Run-wide limit on calls sent again in later passes: below 1 a share of the run's calls so far "
        "(0.1: one in ten, at least one), 1 or more a number of calls. 0: no later pass.",
    )
    backoff_s: float = Field(
        1.0, ge=0, description="Wait before the second pass; doubled before each later one (at most 60 s)."
    )
    deadline_s: float | None = Field(
        None,
        gt=0,
        description="No retry pass starts later than this many seconds after the run started; null: no deadline.",
    )


class Recipe(Strict):
    name: str = Field(
        description="Dataset name; versions are named `<name>-<12 hex>` after it: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
    )
    prompts: PromptSource = Field(default_factory=PromptSource)
    policies: list[PolicySpec] = Field(min_length=1, description="One or several policies sampling responses.")
    samples_per_prompt: int = Field(
        2,
        ge=1,
        le=16,
        description="Responses each policy samples per prompt: per policy, so 2 policies with 2 samples give each prompt 4 responses.",
    )
    judge: JudgeSpec = Field(
        default_factory=PairwiseJudge,
        description="The judge; `type` (default pairwise) decides which fields it takes.",
    )
    filters: FilterSpec = Field(default_factory=FilterSpec)
    parent: str | None = Field(
        None,
        description="Build on a version (rlaif/pipeline/incremental.py): a version id, or `latest` (the newest version named `name` in the store; "
        "a full run when there is none yet). Only prompts not already in the parent are sampled and judged; the new version holds the parent's "
        "rows plus the new ones, with `parents: [id]`. The parent must have been made by the same recipe apart from `prompts` and `name`. null: a version of its own.",
    )
    store: str | None = Field(None, description="Store folder; the CLI's --store and RLAIF_STORE take precedence.")
    retries: RetrySpec = Field(
        default_factory=RetrySpec,
        description="Retry passes for calls that failed with a transient error, run-wide budget and deadline.",
    )
    allow_incomplete: bool = Field(
        False,
        description="When transient failures remain after the retry passes: true commits the version anyway, its manifest "
        "saying `incomplete: {failed_calls: N}`; false stops the run with exit code 3, commits nothing, and re-running resumes from the cache. "
        "A stage in which every call failed never commits, either way.",
    )
    min_verdict_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Stop before committing (exit code 3, quoting one answer) when fewer than this share of the run's "
        "judgments (at least 5) gave a readable verdict, the others answered but unreadable: a wrong template, protocol "
        "or max_tokens. 0: never stop for this (e.g. an echo server standing in for a judge). Not part of the version id.",
    )
    prices: dict[str, PriceSpec] = Field(
        default_factory=dict,
        description="Model name -> {prompt_per_mtok, completion_per_mtok}, USD per million tokens: the run's cost "
        "per stage and model (manifest `cost`, summary, card, report). A model without a price has an unknown cost (docs/operations.md).",
    )
    budget: BudgetSpec | None = Field(
        None,
        description="{max_usd, max_tokens}: the run stops (exit code 4, nothing committed) before a call would take its live calls "
        "over the cap; a re-run with a higher cap resumes from the request cache. null: no cap.",
    )
    execution: ExecutionSpec = Field(
        default_factory=ExecutionSpec,
        description="Where the steps run: {engine: local|ray, address, shards} (docs/scale.md); never changes the version id.",
    )

    @model_validator(mode="after")
    def _across_fields(self):
        return check_listwise_orders(check_judge_settings_apply(check_policies_make_pairs(check_priced_budget(self))))

    def read_from(self, folder: str | Path | None) -> Recipe:
        """This recipe, its judge's relative file paths (template, principles) looked for in `folder` first:
        the recipe file's folder. The folder is not part of the recipe (nor of a version id)."""
        self.judge._folder = Path(folder) if folder is not None else None
        return self

    def models(self, judge: bool = True) -> list[ModelSpec]:
        """The model specs a run uses: its policies, and its judge (every jury member) when it judges."""
        return [*self.policies, *(self.judge.member_specs() if judge else [])]

    def api_only(self, judge: bool = True) -> bool:
        """Whether every model of the run is an API backend (its steps may then work together)."""
        return all(spec.backend in API_BACKENDS for spec in self.models(judge))

    @field_validator("parent")
    @classmethod
    def _parent_id(cls, value):
        if value is None or value == "latest" or is_version_id(value):
            return value
        raise value_error(
            f"{str(value)[:80]!r} is neither a version id nor `latest`",
            "e.g. parent: latest, or parent: my-prefs-0123456789ab (`rlaif datasets list`)",
        )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value):
        try:
            return check_name(value)
        except ValueError as exc:
            raise value_error(
                str(exc), "versions are folders named <name>-<hash> in the store, e.g. name: my-prefs"
            ) from None


def unpriced_api_models(recipe: Recipe) -> list[str]:
    """API models of the run that `prices:` does not price (a `budget.max_usd` cannot be kept without them)."""
    return sorted(
        {spec.model for spec in recipe.models() if spec.backend in API_BACKENDS and spec.model not in recipe.prices}
    )


def check_priced_budget(recipe: Recipe) -> Recipe:
    """A recipe whose `budget.max_usd` meets an API model without a price: an error naming `prices`."""
    missing = unpriced_api_models(recipe) if recipe.budget is not None and recipe.budget.max_usd is not None else []
    if missing:
        raise PydanticCustomError(
            "recipe_value",
            "{problem}",
            {
                "key": "prices",
                "problem": f"budget.max_usd needs a price for every API model; no price for {', '.join(map(repr, missing))}",
                "fix": f"add e.g. prices: {{{missing[0]}: {{prompt_per_mtok: 2.5, completion_per_mtok: 10}}}}, or use budget.max_tokens",
            },
        )
    return recipe


def parse_recipe(data: object, path: str = "<recipe>", folder: str | Path | None = None) -> Recipe:
    """Validate recipe data, raising RecipeError naming the file, key and fix; `folder`: the recipe file's
    folder, where its judge's relative template and principles paths are looked for first."""
    if not isinstance(data, dict):
        raise RecipeError(path, "", "a recipe must be a YAML mapping", "start from recipes/demo.yaml")
    try:
        return Recipe.model_validate(data).read_from(folder)
    except ValidationError as exc:
        described = [describe(error, Recipe, JUDGE_MODELS) for error in exc.errors()]
        key, problem, fix = described[0]
        more = [f"{k}: {p}" + (f" - {f}" if f else "") for k, p, f in dict.fromkeys(described[1:])]
        if more:  # every problem at once, not one per attempt
            fix += ("" if fix.endswith(("?", ".")) else ".") + f" Also {len(more)} more: " + "; ".join(more)
        raise RecipeError(path, key, problem, fix) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    return parse_recipe(read_recipe_yaml(path), str(path), Path(path).parent)


def recipe_file_store(path: str | Path | None, store: str | Path | None = None) -> Path:
    """The store of a command given a recipe file (`--recipe FILE`): the file is read only when neither
    --store nor $RLAIF_STORE decides (rlaif.config.settings.store_path)."""
    return chosen_store(store) or store_path(load_recipe(path) if path else None)
