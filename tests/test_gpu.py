"""The transformers backend and DPO training on a CUDA GPU (skipped without one; CI has none).

Run where torch sees a GPU: `pytest -m gpu tests/test_gpu.py`. The same real smollm2-135m as
the CPU tests; the GPU's judge probabilities must match the CPU's, so a dataset judged on a GPU
means the same as one judged here.
"""

from __future__ import annotations

import math

import pytest

from rlaif.backends.base import GenerateRequest, ScoreRequest
from rlaif.backends.transformers_backend import TransformersBackend
from rlaif.config.recipe import PolicySpec
from tests.fakes import collect

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

JUDGE = ScoreRequest(
    (
        (
            "user",
            'Which answer to "What is 2+2?" is better, Output (a): 4 or Output (b): 5? Answer "Output (a)" or "Output (b)".',
        ),
    ),
    prefix="Output (",
    options=("a", "b"),
)


@pytest.fixture(scope="module")
def gpu_backend():
    engine = TransformersBackend(PolicySpec(batch_size=8, dtype="float32"))
    engine.ensure_loaded()
    yield engine
    engine.close()


def test_backend_runs_on_the_gpu(gpu_backend):
    assert gpu_backend.device == "cuda" and next(gpu_backend.model.parameters()).is_cuda


def test_gpu_judge_probabilities_match_cpu(gpu_backend, monkeypatch):
    (on_gpu,) = collect(gpu_backend.score, [JUDGE])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = TransformersBackend(PolicySpec(dtype="float32"))
    cpu.ensure_loaded()
    assert cpu.device == "cpu"
    (on_cpu,) = collect(cpu.score, [JUDGE])
    cpu.close()
    for option in ("a", "b"):
        assert math.isclose(on_gpu.probs[option], on_cpu.probs[option], abs_tol=2e-3), (on_gpu.probs, on_cpu.probs)


def test_gpu_batched_generation_reports_every_request(gpu_backend):
    prompts = ["Name a colour.", "Count from one to twenty in words.", "Say yes.", "What is the capital of France?"]
    requests = [
        GenerateRequest(GenerateRequest.pack([{"role": "user", "content": p}]), 0.0, 1.0, 16, 0) for p in prompts * 3
    ]
    results = collect(gpu_backend.generate, requests)
    assert len(results) == 12 and all(r.text for r in results)
    assert all(0 < r.completion_tokens <= 16 for r in results)
    assert all(r.finish_reason == "length" for r in results[1::4]), "counting to twenty takes more than 16 tokens"


def test_dpo_trainer_steps_on_the_gpu_in_bf16(tmp_path):
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    path = resolve_model("smollm2-135m")
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} + {i}?"}],
            "chosen": [{"role": "assistant", "content": f"{2 * i}."}],
            "rejected": [{"role": "assistant", "content": f"{2 * i + 1}, I think."}],
        }
        for i in range(8)
    ]
    config = trl.DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_length=64,
        max_steps=2,
        bf16=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(path),
    )
    result = trainer.train()
    assert result.global_step == 2
    assert next(trainer.model.parameters()).is_cuda
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses)
