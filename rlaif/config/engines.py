"""The engines a recipe may name, as data: the class that runs each (imported only when used), the
ModelSpec fields each reads, and which hold no model in this process. The config layer reads this
table; rlaif.backends imports the classes it names."""

from __future__ import annotations

#: backend name -> "module:Class" (imported on first use, so vLLM and torch load only when used)
BACKENDS: dict[str, str] = {
    "transformers": "rlaif.backends.transformers_backend:TransformersBackend",
    "openai": "rlaif.backends.openai_compat:OpenAIBackend",
    "vllm": "rlaif.backends.vllm_backend:VLLMBackend",
}

#: backend name -> the ModelSpec fields (besides `backend` and `model`) it reads; setting another is a recipe error
ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "openai": (
        "base_url",
        "api_key_env",
        "max_concurrency",
        "timeout_s",
        "max_retries",
        "stop_after_failures",
        "rpm",
        "tpm",
        "batch",
        "batch_poll_s",
    ),
    "transformers": ("batch_size", "threads", "dtype"),
    "vllm": (
        "dtype",
        "max_model_len",
        "enable_prefix_caching",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "vllm_env",
    ),
}
#: every engine field of a ModelSpec, each once (the order a recipe's fields are checked in)
ENGINE_FIELDS = tuple(dict.fromkeys(name for options in ENGINE_OPTIONS.values() for name in options))

#: Backends that hold no model in this process (a client of an endpoint): a run keeps them side by side.
API_BACKENDS = frozenset({"openai"})
