"""In-process vLLM offline engine, imported only when a recipe names it.

All pending requests go to the engine in one `LLM.chat` call so vLLM schedules them itself;
verdict-token probabilities come from `logprobs` on a one-token generation after the prefix.
"""

from __future__ import annotations

import math
import time

from rlaif.backends.base import Backend, Completion, GenerateRequest, Scores, ScoreRequest
from rlaif.backends.openai_compat import normalize_token
from rlaif.errors import BackendError


class VLLMBackend(Backend):
    name = "vllm"

    def load(self) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise BackendError("vllm backend needs vLLM - run: pip install 'rlaif[vllm]' (or use backend: transformers)") from None
        from rlaif.models import resolve_model

        self.SamplingParams = SamplingParams
        dtype = "float32" if self.spec.dtype == "float32" else self.spec.dtype
        self.llm = LLM(model=resolve_model(self.spec.model), dtype=dtype, enable_prefix_caching=True)

    def close(self) -> None:
        self.llm = None

    def generate(self, requests: list[GenerateRequest], on_result) -> None:
        params = [
            self.SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens, seed=r.seed)
            for r in requests
        ]
        start = time.perf_counter()
        try:
            outputs = self.llm.chat([r.chat() for r in requests], params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001
            for index in range(len(requests)):
                on_result(index, exc)
            return
        latency = time.perf_counter() - start
        for index, output in enumerate(outputs):
            choice = output.outputs[0]
            on_result(
                index,
                Completion(
                    text=choice.text.strip(),
                    finish_reason=choice.finish_reason or "stop",
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(choice.token_ids),
                    latency_s=latency,
                ),
            )

    def score(self, requests: list[ScoreRequest], on_result) -> None:
        params = self.SamplingParams(temperature=0.0, max_tokens=1, logprobs=20)
        conversations = [[*r.chat(), {"role": "assistant", "content": r.prefix}] for r in requests]
        try:
            outputs = self.llm.chat(
                conversations, params, use_tqdm=False, add_generation_prompt=False, continue_final_message=True
            )
        except Exception as exc:  # noqa: BLE001
            for index in range(len(requests)):
                on_result(index, exc)
            return
        for index, (request, output) in enumerate(zip(requests, outputs)):
            choice = output.outputs[0]
            probs = {option: 0.0 for option in request.options}
            for logprob in (choice.logprobs or [{}])[0].values():
                token = normalize_token(logprob.decoded_token or "")
                for option in request.options:
                    if token == option.lower():
                        probs[option] += math.exp(logprob.logprob)
            on_result(index, Scores(probs=probs, text=choice.text, prompt_tokens=len(output.prompt_token_ids or [])))
