"""In-process Hugging Face transformers engine (CPU or GPU).

Generation is batched with left padding and the model's chat template; a judge's verdict is
read by scoring (one forward pass, no generation): the next-token probabilities of the verdict
tokens right after the assistant prefix the judge wrote for itself.
"""

from __future__ import annotations

import time
from itertools import groupby

from rlaif.backends.base import Backend, Completion, GenerateRequest, ScoreRequest, Scores, Stopped
from rlaif.config.engines import ENGINE_OPTIONS
from rlaif.core.errors import BackendError
from rlaif.core.schema import content_hash


class TransformersBackend(Backend):
    name = "transformers"
    options = ENGINE_OPTIONS["transformers"]
    requires = ("torch", "transformers")

    def load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendError(
                f"transformers backend needs torch and transformers ({exc}) - run: pip install torch==2.13.0 transformers"
            ) from None
        from rlaif.core.cpu import default_threads
        from rlaif.weights.resolve import check_local_model, resolve_model

        store = getattr(self, "store", None)  # the run's store (rlaif.backends.BackendPool); None: the default store
        check_local_model(
            self.spec.model, store
        )  # an unknown name lists the aliases instead of a Hub connection traceback
        torch.set_num_threads(self.spec.threads or default_threads())  # not all cores: that collapses when shared
        path = resolve_model(self.spec.model, store)  # an alias, a trained model id of the store, or a path
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = "auto" if self.spec.dtype == "auto" else getattr(torch, self.spec.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.torch = torch

    def close(self) -> None:
        self.model = self.tokenizer = None

    def _render(self, messages, prefix: str = "") -> str:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + prefix

    def _encode(self, texts: list[str]):
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {key: value.to(self.device) for key, value in batch.items()}

    def _batches(self, requests, key):
        """Indices grouped by `key` (same sampling settings), sorted by length, cut to batch_size."""
        order = sorted(range(len(requests)), key=lambda i: (key(requests[i]), len(str(requests[i].messages))))
        for _, group in groupby(order, key=lambda i: key(requests[i])):
            group = list(group)
            for start in range(0, len(group), self.spec.batch_size):
                yield group[start : start + self.spec.batch_size]

    def _stopped(self, batch: list[int]) -> list[Stopped] | None:
        """After `stop()`: the batch not begun, as values."""
        return (
            [Stopped("not started: the run is stopping (Ctrl-C or SIGTERM)")] * len(batch) if self.stopping else None
        )

    def generate(self, requests: list[GenerateRequest], on_result) -> None:
        settings = lambda r: (r.temperature, r.top_p, r.max_tokens)  # noqa: E731
        for batch in self._batches(requests, settings):
            try:
                results = self._stopped(batch) or self._generate_batch([requests[i] for i in batch])
            except Exception as exc:  # noqa: BLE001 - a failed batch fails its own requests only
                results = [exc] * len(batch)
            for index, result in zip(batch, results):
                on_result(index, result)

    def _generate_batch(self, batch: list[GenerateRequest]) -> list[Completion]:
        torch = self.torch
        first = batch[0]
        torch.manual_seed(int(content_hash([[r.seed, r.messages] for r in batch])[:8], 16))
        inputs = self._encode([self._render(r.chat()) for r in batch])
        start = time.perf_counter()
        sample = first.temperature > 0
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                do_sample=sample,
                temperature=first.temperature if sample else None,
                top_p=first.top_p if sample else None,
                top_k=None,
                max_new_tokens=first.max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        latency = time.perf_counter() - start
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        eos_ids = self._eos_ids()
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, prompt_length in zip(new_tokens.tolist(), prompt_lengths):
            stop_at = next((i for i, token in enumerate(row) if token in eos_ids), None)
            kept = row if stop_at is None else row[:stop_at]
            results.append(
                Completion(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True).strip(),
                    finish_reason="length" if stop_at is None else "stop",
                    prompt_tokens=int(prompt_length),
                    completion_tokens=len(kept) + (0 if stop_at is None else 1),
                    latency_s=latency,
                )
            )
        return results

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        return {i for i in ids if i is not None} | {self.tokenizer.eos_token_id}

    def _option_ids(self, options: tuple[str, ...]) -> list[int]:
        ids = []
        for option in options:
            tokens = self.tokenizer.encode(option, add_special_tokens=False)
            if len(tokens) != 1:
                raise BackendError(
                    f"verdict option {option!r} is not a single token for {self.spec.model} - pick single-token options"
                )
            ids.append(tokens[0])
        return ids

    def score(self, requests: list[ScoreRequest], on_result) -> None:
        for batch in self._batches(requests, lambda r: (r.prefix, r.options)):
            try:
                results = self._stopped(batch) or self._score_batch([requests[i] for i in batch])
            except Exception as exc:  # noqa: BLE001
                results = [exc] * len(batch)
            for index, result in zip(batch, results):
                on_result(index, result)

    def _score_batch(self, batch: list[ScoreRequest]) -> list[Scores]:
        torch = self.torch
        option_ids = self._option_ids(batch[0].options)
        inputs = self._encode([self._render(r.chat(), r.prefix) for r in batch])
        start = time.perf_counter()
        with torch.inference_mode():
            logits = (
                self.model(**inputs, logits_to_keep=1).logits[:, -1, :].float()
            )  # only the last position's verdict tokens are read
        probs = torch.softmax(logits, dim=-1)
        latency = time.perf_counter() - start
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, prompt_length in zip(probs, prompt_lengths):
            text = batch[0].prefix + self.tokenizer.decode([int(torch.argmax(row))])  # the greedy answer
            results.append(
                Scores(
                    probs={option: float(row[i]) for option, i in zip(batch[0].options, option_ids)},
                    text=text,
                    prompt_tokens=int(prompt_length),
                    latency_s=latency / len(batch),
                )
            )
        return results
