"""Which endpoint an API model talks to and with which key (the openai client's own rules)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from rlaif.core.errors import BackendError
from rlaif.core.secrets import display_url  # $OPENAI_BASE_URL is not checked like a recipe's base_url

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def endpoint_url(spec) -> str:
    """The base URL the client talks to: the spec's, else $OPENAI_BASE_URL, else OpenAI's (as the openai client does)."""
    return spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def is_local_url(url: str) -> bool:
    """Whether a URL's host is this machine (loopback or 0.0.0.0).

    >>> is_local_url("http://127.0.0.1:8000/v1"), is_local_url("http://localhost/v1"), is_local_url("https://api.example.com/127.0.0.1")
    (True, True, False)
    """
    host = (urlsplit(url).hostname or "").lower()
    return host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0")


def api_key(spec) -> str:
    """The key from the variable `spec.api_key_env`; a loopback server takes any key ("EMPTY")."""
    key = os.environ.get(spec.api_key_env)
    if key:
        return key
    if spec.base_url and is_local_url(spec.base_url):
        return "EMPTY"  # local servers (vllm serve, llm-katan, llama.cpp) take any key
    raise BackendError(
        f"no API key found for {display_url(endpoint_url(spec))} - set {spec.api_key_env} or point api_key_env at the variable that holds your key"
    )
