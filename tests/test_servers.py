"""The real llm-katan server behaves the way tests/servers.py documents."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai")

from tests.servers import start_llm_katan  # noqa: E402


def test_echo_chat_completion_through_openai_client():
    with start_llm_katan() as srv:
        assert srv.base_url.endswith("/v1")
        assert srv.requests_served() == 0
        client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, timeout=10)
        resp = client.chat.completions.create(
            model=srv.model,
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello katan"},
            ],
            max_tokens=3,
            n=2,  # accepted but ignored
            seed=7,  # accepted but ignored
        )
        assert resp.model == srv.model
        assert len(resp.choices) == 1
        choice = resp.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.logprobs is None
        text = choice.message.content
        assert text.startswith(f"[echo] model={srv.model} ")
        assert "messages=2 max_tokens=3 " in text  # echoed, not enforced
        assert text.splitlines()[-1] == "User: hello katan"
        assert resp.usage.prompt_tokens == 4  # whitespace words of all messages
        assert resp.usage.completion_tokens == len(text.split())
        assert srv.requests_served() == 1


@pytest.mark.parametrize(
    "args, ok_first, exc_type, status, message",
    [
        (("--error-rate", "1.0"), 0, openai.InternalServerError, 500, "internal server error"),
        (("--rate-limit-after", "1"), 1, openai.RateLimitError, 429, "rate limit exceeded"),
    ],
    ids=["error-rate", "rate-limit-after"],
)
def test_injected_errors(args, ok_first, exc_type, status, message):
    with start_llm_katan(*args) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, timeout=10)
        msgs = [{"role": "user", "content": "hi"}]
        for _ in range(ok_first):
            client.chat.completions.create(model=srv.model, messages=msgs)
        with pytest.raises(exc_type) as ei:
            client.chat.completions.create(model=srv.model, messages=msgs)
        err = ei.value
        assert err.status_code == status
        assert err.body == {"message": message, "type": "server_error", "code": None}
        assert "retry-after" not in err.response.headers
        # injected failures are not counted as served requests
        assert srv.requests_served() == ok_first
