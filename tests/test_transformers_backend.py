"""The in-process transformers backend with the real smollm2-135m."""

import pytest

from rlaif.backends.base import GenerateRequest, ScoreRequest
from rlaif.backends.transformers_backend import TransformersBackend
from rlaif.config.recipe import PairwiseJudge, PolicySpec
from rlaif.core.errors import BackendError
from tests.fakes import collect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backend():
    engine = TransformersBackend(PolicySpec(batch_size=4))
    engine.ensure_loaded()
    yield engine
    engine.close()


def test_batched_generation_reports_every_request(backend):
    messages = GenerateRequest.pack([{"role": "user", "content": "Count from one to twenty in words."}])
    short = GenerateRequest.pack([{"role": "user", "content": "Say yes."}])
    requests = [
        GenerateRequest(m, temperature=0.8, top_p=0.95, max_tokens=6, seed=s, sample_index=s)
        for m in (messages, short)
        for s in range(3)
    ]
    results = collect(backend.generate, requests)
    assert len(results) == 6 and all(r.text for r in results)
    assert results[0].finish_reason == "length" and results[0].completion_tokens == 6
    assert all(r.prompt_tokens > 5 for r in results)
    assert len({r.text for r in results[:3]}) > 1, "samples with different seeds should differ"


def test_greedy_generation_is_deterministic(backend):
    request = GenerateRequest(GenerateRequest.pack([{"role": "user", "content": "Name a colour."}]), 0.0, 1.0, 12, 0)
    first, second = collect(backend.generate, [request]), collect(backend.generate, [request])
    assert first[0].text == second[0].text


def test_scoring_gives_verdict_token_probabilities(backend):
    messages = (
        ("user", 'Which is better for 2+2, Output (a): 4 or Output (b): 5? Answer "Output (a)" or "Output (b)".'),
    )
    (scores,) = collect(backend.score, [ScoreRequest(messages, prefix="Output (", options=("a", "b"))])
    assert set(scores.probs) == {"a", "b"}
    assert 0.3 < sum(scores.probs.values()) <= 1.0  # most next-token mass lands on the verdict tokens
    assert scores.text.startswith("Output (")


def test_multi_token_option_is_a_clear_error(backend):
    request = ScoreRequest((("user", "x"),), prefix="Output (", options=("alpha-bravo-charlie", "b"))
    (result,) = collect(backend.score, [request])
    assert isinstance(result, BackendError) and "single token" in str(result)


def test_judge_spec_defaults_use_the_builtin_model():
    assert PairwiseJudge().model == "smollm2-135m" and PairwiseJudge().backend == "transformers"


def test_torch_threads_default_to_half_the_cores_not_every_core(monkeypatch):
    """Issue 26 item 1: torch's own default (every core) collapsed on a shared machine (benchmarks/cpu_threads.py)."""
    import torch

    from rlaif.core.cpu import default_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert default_threads() == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert default_threads() == 1
    monkeypatch.undo()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(7)
        engine = TransformersBackend(PolicySpec())  # threads unset
        engine.ensure_loaded()
        assert torch.get_num_threads() == default_threads()
        engine.close()
        TransformersBackend(PolicySpec(threads=3)).ensure_loaded()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
