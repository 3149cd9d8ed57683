"""Each trainer (sft, rm, dpo, kto, rloo, grpo on TRL; ppo and rrhf of rlaif.training) trains 2 steps on
CPU through `rlaif.training.driver.train`, from a version the pipeline made (tests/train_version.py): the
weights change, the saved model loads and generates (or scores, for rm), the card names the version, and a
re-run reports the existing model. None of that depends on the model knowing language, so the version is
made and every trainer runs on the tiny random llama of tests/tiny_lm.py (`tiny_model`, a local model
folder as the model name); one dpo run keeps the real smollm2-135m (the built-in alias, a 30-layer model
with tied embeddings) end to end through the driver."""

from __future__ import annotations

import json
import math

import pytest

from tests.train_version import pipeline_version

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("trl")

WEIGHT = "model.layers.0.self_attn.q_proj.weight"
SMALL = {"max_steps": 2, "max_length": 64, "batch_size": 2}
ONLINE = {"num_generations": 2, "max_completion_length": 8}


def length_reward(prompts, completions, **kwargs) -> list[float]:
    """Deterministic: longer completions score higher (TRL reward_funcs shape)."""
    return [
        float(len(completion[0]["content"] if isinstance(completion, list) else completion))
        for completion in completions
    ]


@pytest.fixture(scope="module")
def version(tiny_model, tmp_path_factory):
    """A version the pipeline made with the tiny model as policy and judge (one per module: the trainings
    below add their models to its store)."""
    store = tmp_path_factory.mktemp("train-store")
    torch.set_num_threads(1)
    return store, pipeline_version(store, tiny_model)


def base_weight(model: str):
    """WEIGHT of the base `model` (an alias or a local model folder) before any training."""
    from pathlib import Path

    from rlaif.weights.resolve import resolve_model

    return saved_weight(Path(resolve_model(model)))


def settings_for(algorithm: str):
    from rlaif.training.config import load_settings

    reward = {"reward": {"judge": "tests/length-reward.yaml"}}  # replaced by length_reward in the test
    extra = {
        "rloo": {**ONLINE, **reward},
        "grpo": {**ONLINE, **reward},
        "ppo": {**reward, "max_new_tokens": 8, "mini_batch_size": 2, "ppo_epochs": 1},
        "rrhf": {},
    }.get(algorithm, {})
    return load_settings(algorithm, **SMALL, **extra)


def saved_weight(folder, name: str = WEIGHT):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        return weights.get_tensor(name)


def check_loads(algorithm: str, folder) -> None:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if algorithm == "rm":
        scorer = AutoModelForSequenceClassification.from_pretrained(folder)
        batch = tokenizer(["User: hi\nAssistant: hello", "User: hi\nAssistant: no"], return_tensors="pt", padding=True)
        with torch.no_grad():
            scores = scorer(**batch).logits
        assert scores.shape == (2, 1) and torch.isfinite(scores).all()
        return
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi."}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.parametrize("algorithm", ["sft", "rm", "dpo", "kto", "rloo", "grpo", "ppo", "rrhf"])
def test_trains_two_steps_saves_and_reruns_as_existing(algorithm, version, tiny_model, monkeypatch):
    trains_two_steps_saves_and_reruns_as_existing(algorithm, tiny_model, version, monkeypatch)


def test_the_real_smollm2_trains_dpo_saves_and_reruns_as_existing(version, monkeypatch):
    """The built-in alias through the driver: converted weights, tied embeddings saved and loaded again."""
    trains_two_steps_saves_and_reruns_as_existing("dpo", "smollm2-135m", version, monkeypatch)


def trains_two_steps_saves_and_reruns_as_existing(algorithm: str, model: str, version, monkeypatch) -> None:
    from rlaif.training import driver

    store, version_id = version
    monkeypatch.setattr(
        driver, "build_reward", lambda settings, store, device: length_reward if algorithm in driver.ONLINE else None
    )
    steps: list[dict] = []
    result = driver.train(
        store, version_id, algorithm, model, settings_for(algorithm), on_metrics=steps.append, progress=False
    )

    assert (
        not result.existed
        and result.path.name == result.model_id
        and result.model_id.startswith(f"piped-{algorithm}-")
    )
    assert [step["step"] for step in steps] == [1, 2] and all(isinstance(step["loss"], float) for step in steps)
    assert result.metrics["steps"] == 2
    lines = [json.loads(line) for line in (result.path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    if algorithm in ("dpo", "rm"):
        assert "reward_accuracy" in lines[-1]
    if algorithm in ("rloo", "grpo", "ppo"):
        assert "mean_reward" in lines[-1]
    if algorithm == "ppo":
        assert all(math.isfinite(line["kl"]) for line in lines)

    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["dataset"]["id"] == version_id and manifest["parents"] == [version_id]
    assert manifest["algorithm"] == algorithm and manifest["weights"] == "model" and manifest["steps"] == 2
    assert manifest["hardware"]["device"] == "cpu" and manifest["hardware"]["trl"]
    assert version_id in (result.path / "README.md").read_text()
    assert "<svg" in (result.path / "report.html").read_text()  # the training report, with its plots

    assert manifest["base_model"] == model
    assert not torch.equal(saved_weight(result.path / "model"), base_weight(model))  # the parameters changed
    check_loads(algorithm, result.path / "model")

    again = driver.train(
        store, version_id, algorithm, model, settings_for(algorithm), on_metrics=steps.append, progress=False
    )
    assert again.existed and again.model_id == result.model_id and len(steps) == 2  # no training the second time


def test_grpo_against_a_reward_model_trained_on_the_same_version(version, tiny_model):
    """RLHF stage 3 with the project's own pieces: an rm trained on the version is the reward of grpo
    (`reward: {model: RM_ID}`, resolved in the store); the grpo model's reward is that model's score."""
    from rlaif.training.config import load_settings
    from rlaif.training.driver import train

    store, version_id = version
    rm = train(store, version_id, "rm", tiny_model, settings_for("rm"), progress=False)
    settings = load_settings("grpo", **SMALL, **ONLINE, reward={"model": rm.model_id})
    steps: list[dict] = []
    grpo = train(store, version_id, "grpo", tiny_model, settings, on_metrics=steps.append, progress=False)
    manifest = json.loads((grpo.path / "manifest.json").read_text())
    assert manifest["reward"] == {"model": rm.model_id} and [s["step"] for s in steps] == [1, 2]
    assert all(math.isfinite(s["mean_reward"]) for s in steps)
    assert any(s["mean_reward"] != 0.0 for s in steps)  # scores of the rm, not a constant 0


def test_a_dpo_model_samples_the_next_round_and_lineage_shows_both_versions(version, tiny_model):
    """The iterative step by hand: the trained model id as the policy of the next run's recipe."""
    from rlaif.config.recipe import parse_recipe
    from rlaif.pipeline.runner import run_recipe
    from rlaif.store.lineage import lineage
    from rlaif.store.versions import read_table
    from rlaif.training.driver import train

    store, version_id = version
    dpo = train(store, version_id, "dpo", tiny_model, settings_for("dpo"), progress=False)
    prompts = store.parent / "round2.jsonl"
    prompts.write_text('{"prompt": "Name an animal."}\n{"prompt": "Say bye."}\n')
    recipe = parse_recipe(
        {
            "name": "round2",
            "prompts": {"path": str(prompts)},
            "policies": [
                {"name": "trained", "model": dpo.model_id, "params": {"temperature": 1.0, "max_tokens": 8, "seed": 1}}
            ],
            "samples_per_prompt": 2,
            "judge": {"model": tiny_model},
            "filters": {"drop_truncated": False, "consistency": False, "min_margin": 0.0},
        }
    )
    round2, _, manifest, _ = run_recipe(recipe, store)
    assert manifest["models"]["policies"][0]["model"] == dpo.model_id
    assert all(row["text"] for row in read_table(store, round2, "generations"))
    tree = lineage(store, round2)
    model_node = next(node for node in tree["parents"] if node["id"] == dpo.model_id)
    assert model_node["parents"][0]["id"] == version_id  # round 2 -> the dpo model -> the version it was trained on


# ---------------------------------------------------------------- online trainers on a tiny model (TRL's real code)

QUESTION = [{"role": "user", "content": "Write one short line about rivers, please."}]
GROUP = ["Q5 MARK", "Q2 plain", "Q4 plain", "Q1 MARK"]  # the judge fails on MARK; the rest are rated by their Q digit


def online_job(algorithm: str, model_path: str, tmp_path, reward, **options):
    from rlaif.training.config import load_settings
    from rlaif.training.job import TrainJob

    settings = load_settings(
        algorithm,
        max_steps=1,
        batch_size=4,
        max_length=64,
        num_generations=4,
        max_completion_length=8,
        beta=0.0,
        **options,
    )
    return TrainJob(
        algorithm,
        model_path,
        [{"prompt": QUESTION}],
        settings,
        tmp_path / "out",
        lambda metrics: None,
        reward,
        "cpu",
        {},
    )


def fixed_generations(trainer_cls, texts: list[str], tokenizer, seen: list | None = None):
    """A stand-in for the trainer's sampling: the given texts as completions (records the prompt ids it got)."""
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for text in texts]
    grpo = "GRPO" in trainer_cls.__name__

    def generate(self, prompt_ids, images, multimodal_fields, *args, **kwargs):
        if seen is not None:
            seen.extend(list(p) for p in prompt_ids)
        completions = [list(ids[i % len(ids)]) for i in range(len(prompt_ids))]
        return (completions, None) if grpo else completions

    return generate


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_a_failed_judgment_does_not_change_the_advantage_of_the_response(
    algorithm, tiny_model, use_backend, tmp_path, monkeypatch
):
    """Item 4 of issue 23: the judge fails on every response with a marker; TRL's real trainer gives those
    responses advantage 0 and computes the others' advantages from the judged responses alone."""
    import trl
    import yaml

    from rlaif.training import trl_trainers
    from rlaif.training.rewards import judge_reward
    from tests.fakes import FakeBackend, marker_judge

    use_backend(FakeBackend(None, score=marker_judge(r"Q(\d)")))
    recipe = tmp_path / "judge.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "marker",
                "policies": [{"name": "p", "model": "smollm2-135m"}],
                "judge": {"type": "pointwise", "aspects": ["helpfulness"], "scale": 5},
            }
        )
    )
    job = online_job(algorithm, tiny_model, tmp_path, judge_reward(recipe, tmp_path / "store"))
    trainer_cls = getattr(trl, {"rloo": "RLOOTrainer", "grpo": "GRPOTrainer"}[algorithm])
    tokenizer = trl_trainers.load_tokenizer(tiny_model)
    trainer = trainer_cls(
        model=trl_trainers.load_causal_lm(job),
        args=trl_trainers.build_config(job),
        train_dataset=trl_trainers._dataset(job.rows),
        processing_class=tokenizer,
        reward_funcs=trl_trainers.reward_function(job),
    )
    monkeypatch.setattr(trainer_cls, "_generate_single_turn", fixed_generations(trainer_cls, GROUP, tokenizer))
    trainer.model.train()
    advantages = trainer._generate_and_score_completions([{"prompt": QUESTION} for _ in GROUP])["advantages"].tolist()

    judged = torch.tensor([(2 - 1) / 4, (4 - 1) / 4])  # Q2 and Q4 on the 1-5 scale
    if algorithm == "rloo":  # leave-one-out baseline over the judged siblings only
        expected = judged - judged.flip(0)
    else:  # group-normalised over the judged responses only
        expected = (judged - judged.mean()) / (judged.std() + 1e-4)
    assert advantages[0] == 0.0 and advantages[3] == 0.0  # the failed judgments push the policy nowhere
    assert advantages[1:3] == pytest.approx(expected.tolist(), abs=1e-4)
    assert job.reward.counts == {"judged": 2, "failed": 2}


def marker_reward(prompts, completions, **kwargs) -> list[float | None]:
    """A reward that is missing (None) for every completion containing MARK, else its Q digit."""
    texts = [completion[0]["content"] if isinstance(completion, list) else completion for completion in completions]
    return [None if "MARK" in text else float(text.split("Q", 1)[1][0]) for text in texts]


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_failed_rewards_are_counted_as_reward_failed_in_the_metrics(algorithm, tiny_model, tmp_path, monkeypatch):
    """Item 4 of issue 23: a missing reward is still counted, per step and in the final metrics (the model card)."""
    import trl

    from rlaif.training import trl_trainers

    trainer_cls = getattr(trl, {"rloo": "RLOOTrainer", "grpo": "GRPOTrainer"}[algorithm])
    monkeypatch.setattr(
        trainer_cls,
        "_generate_single_turn",
        fixed_generations(trainer_cls, GROUP, trl_trainers.load_tokenizer(tiny_model)),
    )
    logged: list[dict] = []
    job = online_job(algorithm, tiny_model, tmp_path, marker_reward)
    job.on_metrics = logged.append
    final = getattr(trl_trainers, f"run_{algorithm}")(job)
    assert [m["reward_failed"] for m in logged] == [2.0] and final["reward_failed"] == 2.0
    assert final["mean_reward"] == pytest.approx(3.0)  # the judged Q2 and Q4 only


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_max_length_cuts_rloo_and_grpo_prompts_from_the_left(algorithm, tiny_model, tmp_path, monkeypatch):
    """Item 5 of issue 23: TRL 1.16's RLOOConfig / GRPOConfig have no max_prompt_length; rlaif's
    `max_length` (the documented prompt limit) keeps the last max_length prompt tokens, as TRL used to."""
    import trl

    from rlaif.training import trl_trainers

    tokenizer = trl_trainers.load_tokenizer(tiny_model)
    trainer_cls = getattr(trl, {"rloo": "RLOOTrainer", "grpo": "GRPOTrainer"}[algorithm])
    seen: list[list[int]] = []
    monkeypatch.setattr(
        trainer_cls, "_generate_single_turn", fixed_generations(trainer_cls, ["Q3 a", "Q4 b"], tokenizer, seen)
    )
    job = online_job(algorithm, tiny_model, tmp_path, marker_reward)
    job.settings = job.settings.model_copy(update={"max_length": 8})
    getattr(trl_trainers, f"run_{algorithm}")(job)
    full = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=True, return_dict=True)[
        "input_ids"
    ]
    assert len(full) > 8 and seen and all(ids == list(full[-8:]) for ids in seen)


# ---------------------------------------------------------------- review of issue 23's fixes against TRL / OpenRLHF


def texts_of(completions) -> list[str]:
    return [completion[0]["content"] if isinstance(completion, list) else completion for completion in completions]


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_an_infinite_reward_is_a_missing_one(algorithm, tiny_model, tmp_path, monkeypatch):
    """inf is no score: TRL's real trainer gives that completion advantage 0 and the others the advantages of
    the three finite rewards alone (RLOO would give them -3.4e38 through nan_to_num, GRPO would zero the
    group); it is counted as failed."""
    import trl

    from rlaif.training import trl_trainers

    def reward(prompts, completions, **kwargs):
        return [math.inf if "inf" in text else float(text.split("Q", 1)[1][0]) for text in texts_of(completions)]

    job = online_job(algorithm, tiny_model, tmp_path, reward)
    trainer_cls = getattr(trl, {"rloo": "RLOOTrainer", "grpo": "GRPOTrainer"}[algorithm])
    tokenizer = trl_trainers.load_tokenizer(tiny_model)
    rewards = trl_trainers.reward_function(job)
    trainer = trainer_cls(
        model=trl_trainers.load_causal_lm(job),
        args=trl_trainers.build_config(job),
        train_dataset=trl_trainers._dataset(job.rows),
        processing_class=tokenizer,
        reward_funcs=rewards,
    )
    monkeypatch.setattr(
        trainer_cls,
        "_generate_single_turn",
        fixed_generations(trainer_cls, ["Q9 inf", "Q2 b", "Q4 c", "Q1 d"], tokenizer),
    )
    trainer.model.train()
    advantages = trainer._generate_and_score_completions([{"prompt": QUESTION} for _ in range(4)])[
        "advantages"
    ].tolist()

    finite = torch.tensor([2.0, 4.0, 1.0])
    if algorithm == "rloo":  # leave-one-out over the finite siblings
        expected = finite - (finite.sum() - finite) / 2
    else:
        expected = (finite - finite.mean()) / (finite.std() + 1e-4)
    assert advantages[0] == 0.0
    assert advantages[1:] == pytest.approx(expected.tolist(), abs=1e-4)
    assert rewards.counts == {"scored": 3, "failed": 1}


def with_sampling_settings(folder) -> str:
    """The tiny model with a chat model's sampling settings in its generation_config.json."""
    from transformers import GenerationConfig

    from tests.tiny_lm import tiny_causal_lm

    path = tiny_causal_lm(folder)
    config = GenerationConfig.from_pretrained(path)
    config.do_sample, config.min_p, config.no_repeat_ngram_size = True, 0.1, 3
    config.save_pretrained(path)
    return path


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["TemperatureLogitsWarper"]),
        ({"generation_kwargs": {"top_k": 5}}, ["TemperatureLogitsWarper", "TopKLogitsWarper"]),
    ],
)
def test_rloo_and_grpo_sample_from_softmax_of_logits_over_temperature(
    algorithm, options, expected, tmp_path, monkeypatch
):
    """The model's generation_config (min_p 0.1, no_repeat_ngram_size 3) does not reshape the samples: the
    logits processors of every generation are the temperature alone, plus what the user's own
    generation_kwargs ask for; the saved model keeps its generation config."""
    from transformers import GenerationConfig
    from transformers.generation.utils import GenerationMixin

    from rlaif.training import trl_trainers

    built: list[list[str]] = []
    original = GenerationMixin._get_logits_processor

    def spied(self, *args, **kwargs):
        processors = original(self, *args, **kwargs)
        built.append([type(processor).__name__ for processor in processors])
        return processors

    monkeypatch.setattr(GenerationMixin, "_get_logits_processor", spied)
    model = with_sampling_settings(tmp_path / "chat")
    job = online_job(algorithm, model, tmp_path, length_reward, temperature=0.7, **options)
    getattr(trl_trainers, f"run_{algorithm}")(job)
    assert built and all(names == expected for names in built), built
    saved = GenerationConfig.from_pretrained(tmp_path / "out" / "model")
    assert (saved.min_p, saved.no_repeat_ngram_size) == (0.1, 3)


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_a_batch_without_a_single_reward_makes_no_optimizer_step(algorithm, tiny_model, tmp_path, monkeypatch):
    """A scored step, then a step whose rewards are all missing: the second leaves the weights as the first
    left them (AdamW's momentum would move them with zero gradients), as PPO skips such a rollout."""
    import trl
    from safetensors.torch import load_file

    from rlaif.training import trl_trainers

    trainer_cls = getattr(trl, {"rloo": "RLOOTrainer", "grpo": "GRPOTrainer"}[algorithm])
    monkeypatch.setattr(
        trainer_cls,
        "_generate_single_turn",
        fixed_generations(trainer_cls, ["Q3 a", "Q5 b", "Q1 c", "Q2 d"], trl_trainers.load_tokenizer(tiny_model)),
    )
    calls: list[int] = []

    def first_only(prompts, completions, **kwargs):  # rewards for the first batch, none for the second
        calls.append(len(prompts))
        return marker_reward(prompts, completions) if len(calls) == 1 else [None] * len(prompts)

    logged: list[dict] = []
    one = online_job(algorithm, tiny_model, tmp_path / "one", marker_reward, learning_rate=1e-3)
    two = online_job(algorithm, tiny_model, tmp_path / "two", first_only, learning_rate=1e-3)
    two.settings, two.on_metrics = two.settings.model_copy(update={"max_steps": 2}), logged.append
    getattr(trl_trainers, f"run_{algorithm}")(one)
    final = getattr(trl_trainers, f"run_{algorithm}")(two)
    assert calls == [4, 4] and [m["step"] for m in logged] == [1, 2]
    after_one, after_two = (
        load_file(str(tmp_path / name / "out" / "model" / "model.safetensors")) for name in ("one", "two")
    )
    base = load_file(f"{tiny_model}/model.safetensors")
    assert any(not torch.equal(after_one[key], base[key]) for key in base), "the scored step changed no weight"
    for key, value in after_one.items():
        assert torch.equal(value, after_two[key]), f"{key}: a step without a reward moved the weights"
    assert (
        [m["update_skipped"] for m in logged] == [0.0, 1.0]
        and final["steps_skipped"] == 1.0
        and final["reward_failed"] == 4.0
    )


def test_identical_trainings_started_together_train_once(version, tiny_model, monkeypatch):
    """Issue 25 item 8: the second of two identical trainings waits for the first's lock, then reuses its model
    (one training, not two; the first is held inside its trainer until the second says it waits)."""
    import logging
    import threading

    from rlaif.training import driver
    from rlaif.training.config import load_settings

    store, version_id = version
    settings = load_settings("dpo", **SMALL, name="together")
    real, trainings, started, gate, waiting = (
        driver.trainer_function,
        [],
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )

    def counted(algorithm):
        def run(job):
            trainings.append(job.output_dir)
            started.set()
            gate.wait(timeout=300)
            return real(algorithm)(job)

        return run

    class Waiting(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("waiting for an identical training"):
                waiting.set()

    handler = Waiting()
    logging.getLogger(driver.__name__).addHandler(handler)
    monkeypatch.setattr(driver, "trainer_function", counted)
    results = {}

    def train(key):
        results[key] = driver.train(store, version_id, "dpo", tiny_model, settings, progress=False)

    first, second = threading.Thread(target=train, args=("first",)), threading.Thread(target=train, args=("second",))
    try:
        first.start()
        assert started.wait(timeout=300)
        second.start()
        said_it_waits = waiting.wait(timeout=120)
    finally:
        gate.set()
        first.join(), second.join()
        logging.getLogger(driver.__name__).removeHandler(handler)
    assert said_it_waits and len(trainings) == 1
    assert results["first"].model_id == results["second"].model_id
    assert (results["first"].existed, results["second"].existed) == (False, True)


def test_a_new_reward_head_is_one_line_not_a_load_report(tiny_model, capfd):
    """Issue 26 item 11: transformers' LOAD REPORT (ANSI codes, a MISSING/UNEXPECTED table) on every `train rm`."""
    from rlaif.training.trl_trainers import new_reward_model

    model = new_reward_model(tiny_model, None)
    out, err = capfd.readouterr()
    assert model.config.num_labels == 1
    assert "LOAD REPORT" not in out + err and "\x1b[" not in out + err
    assert "rm: a new one-output score head starts from random weights" in err
