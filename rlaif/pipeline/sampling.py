"""Sample K responses per prompt from one or several policies."""

from __future__ import annotations

from rlaif.backends import make_backend, opened
from rlaif.backends.base import Completion, GenerateRequest
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import run_generate
from rlaif.core.schema import Generation, Prompt
from rlaif.core.secrets import error_text, spec_secrets


def generation_requests(prompts: list[Prompt], policy, samples: int) -> list[GenerateRequest]:
    """One request per (prompt, sample index); sample i uses seed + i so samples differ and repeat."""
    params = policy.params
    return [
        GenerateRequest(
            messages=GenerateRequest.pack(prompt.messages),
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed + index,
            sample_index=index,
        )
        for prompt in prompts
        for index in range(samples)
    ]


def to_generation(
    prompt: Prompt, policy, index: int, request: GenerateRequest, result: Completion | Exception
) -> Generation:
    common = dict(
        prompt_id=prompt.id,
        policy=policy.name,
        model=policy.model,
        sample_index=index,
        params=policy.params.model_dump(),
        seed=request.seed,
    )
    if isinstance(result, Exception):
        return Generation(text=None, finish_reason=None, error=error_text(result, spec_secrets(policy)), **common)
    return Generation(
        text=result.text,
        finish_reason=result.finish_reason,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        **common,
    )


def sample_policy(
    prompts: list[Prompt], policy, samples: int, cache: CallCache, stats: CallStats, label: str = ""
) -> list[Generation]:
    """All samples of one policy, in prompt order; failed calls come back as Generation(error=...).

    `label` is added to the progress bar's description (e.g. the chunk of a chunked run).
    """
    requests = generation_requests(prompts, policy, samples)
    with opened(make_backend, policy) as backend:
        results = run_generate(backend, requests, cache, stats, label=f"sampling {policy.name}{label}")
    return [
        to_generation(prompts[i // samples], policy, i % samples, request, result)
        for i, (request, result) in enumerate(zip(requests, results))
    ]
