"""`rlaif serve-reward`: a real server process answering OpenRLHF-shaped and pair-shaped requests with
the reward model's in-process scores, 400s naming the field, the verl client, and a judge as the reward."""

from __future__ import annotations

import base64
import errno
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rlaif.training.reward_server import (
    TOKEN_ENV,
    RequestError,
    RewardService,
    compute_score,
    compute_score_batch,
    make_server,
    parse_request,
    post_rewards,
    server_token,
)
from tests.badinput import ENV, assert_clean_failure, run_cli, write_recipe
from tests.conftest import ROOT

CHATS = [
    [{"role": "user", "content": "Say hi."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "What is 2+2?"}],
]
RESPONSES = ["Hello there!", "Blue.", "4, of course."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory) -> str:
    """A real (tiny, randomly initialised) Llama sequence classifier with SmolLM2's tokenizer, num_labels=1."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from rlaif.weights.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    path = tmp_path_factory.mktemp("rm") / "model"
    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def in_process(reward_model):
    from rlaif.training.rewards import reward_model_scorer

    return reward_model_scorer(reward_model)


def start(args: list[str], cwd: Path, timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlaif.cli", "serve-reward", *args, "--port", str(port)],
        cwd=ROOT,
        env={**ENV, "RLAIF_STORE": str(cwd / "store")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve-reward exited {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                assert json.loads(response.read())["status"] == "ok"
                return proc, f"http://127.0.0.1:{port}/get_reward"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("serve-reward did not answer /health in time")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(reward_model, tmp_path_factory):
    proc, url = start(["--model", reward_model, "--device", "cpu"], tmp_path_factory.mktemp("srv"))
    yield url
    stop(proc)


def post(url: str, body: bytes | dict) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # a real model judging on a busy machine
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_a_batch_of_pairs_gets_the_in_process_scores(server, in_process):
    status, body = post(server, {"prompts": CHATS, "responses": RESPONSES})
    expected = in_process(CHATS, RESPONSES)
    assert status == 200 and len(body["rewards"]) == 3 and body["rewards"] == pytest.approx(expected, abs=1e-5)
    assert body["scores"] == body["rewards"] and body["extra_logs"] == {"reward_failed": [0.0, 0.0, 0.0]}
    assert len(set(body["rewards"])) == 3  # the pairs are told apart


@pytest.mark.slow
def test_openrlhf_queries_are_split_at_the_prompt_and_score_the_same(server, in_process, reward_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(reward_model)
    prompts = [tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) for chat in CHATS]
    queries = [p + r + "<|im_end|>" for p, r in zip(prompts, RESPONSES)]
    status, body = post(server, {"query": queries, "prompts": prompts, "labels": ["", "", ""]})
    assert status == 200 and body["rewards"] == pytest.approx(in_process(CHATS, RESPONSES), abs=1e-5)
    status, alone = post(server, {"query": queries})  # no prompts: the chat turns are read from the query
    assert status == 200 and alone["rewards"] == pytest.approx(body["rewards"], abs=1e-5)


@pytest.mark.slow
def test_verl_client_functions_post_to_the_server(server, in_process):
    extra = [{"split": "train", "index": i, "messages": chat} for i, chat in enumerate(CHATS)]
    expected = in_process(CHATS, RESPONSES)
    assert compute_score("rlaif/x", RESPONSES[1], "", extra[1], url=server) == pytest.approx(expected[1], abs=1e-5)
    batch = compute_score_batch(["rlaif/x"] * 3, RESPONSES, ["", "", ""], extra, url=server)
    assert batch == pytest.approx(expected, abs=1e-5)
    assert post_rewards(CHATS[:1], RESPONSES[:1], url=server) == pytest.approx(expected[:1], abs=1e-5)


BAD = [
    (b"{not json", "body"),
    ([1, 2], "body"),
    ({}, "query"),
    ({"query": "one text"}, "query"),
    ({"query": ["<|im_start|>user\nHi<|im_end|>\nHello"], "prompts": ["something else"]}, "prompts[0]"),
    ({"query": ["plain text, no turns"]}, "prompts"),
    ({"query": ["a", "b"], "prompts": ["a"]}, "prompts"),
    ({"prompts": CHATS[:1], "responses": [7]}, "responses[0]"),
    ({"prompts": [], "responses": ["x"]}, "prompts"),
    ({"prompts": [[{"role": "robot", "content": "x"}]], "responses": ["x"]}, "prompts[0]"),
    ({"prompts": CHATS[:1], "responses": ["x"], "baselines": ["a", "b"]}, "baselines"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("body", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_requests_get_400_naming_the_field(server, body, field):
    status, answer = post(server, body)
    assert status == 400 and answer["field"] == field and answer["error"].startswith(f"{field}:")


@pytest.mark.parametrize(("body", "field"), [b for b in BAD if not isinstance(b[0], bytes)])
def test_parse_request_names_the_field(body, field):
    with pytest.raises(RequestError) as info:
        parse_request(body)
    assert info.value.field == field


def test_llama3_queries_and_labels_as_baselines_only_when_asked():
    prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    body = {"query": [prompt + "Hello.<|eot_id|>"], "prompts": [prompt], "labels": ["Hey."]}
    batch = parse_request(body)
    assert (
        batch.prompts == [[{"role": "user", "content": "Hi?"}]]
        and batch.responses == ["Hello."]
        and batch.baselines is None
    )
    assert parse_request(body, labels_as_baselines=True).baselines == ["Hey."]
    plain = parse_request({"query": ["Question? Answer."], "prompts": ["Question?"], "labels": [None]})
    assert (
        plain.prompts == [[{"role": "user", "content": "Question?"}]]
        and plain.responses == ["Answer."]
        and plain.baselines is None
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([], ["exactly one of --model", "--judge"]),
        (["--model", "m", "--judge", "r.yaml"], ["exactly one of --model"]),
        (["--model", "no/such/folder"], ["--model 'no/such/folder'", "not a model folder"]),
        (["--judge", "no-such-recipe.yaml"], ["no-such-recipe.yaml"]),
        (["--model", "m", "--labels-as-baselines"], ["--labels-as-baselines", "serve a --judge"]),
    ],
)
def test_bad_serve_reward_arguments_exit_2(tmp_path, args, needles):
    assert_clean_failure(
        run_cli("serve-reward", *args, "--store", str(tmp_path / "store")), *needles, store=tmp_path / "store"
    )


@pytest.mark.slow
def test_a_judge_serves_debiased_rewards_against_baselines(tmp_path):
    recipe = write_recipe(
        tmp_path,
        {
            "name": "rj",
            "policies": [{"name": "p", "model": "smollm2-135m", "params": {"max_tokens": 8}}],
            "judge": {
                "model": "smollm2-135m",
                "template": str(ROOT / "rlaif/judges/prompts/pairwise_judge.j2"),
                "batch_size": 4,
            },
        },
    )
    proc, url = start(["--judge", str(recipe), "--labels-as-baselines"], tmp_path)
    try:
        status, body = post(url, {"prompts": CHATS[:2], "responses": RESPONSES[:2], "baselines": ["Hi.", "Red."]})
        assert status == 200 and len(body["rewards"]) == 2 and all(0.0 <= r <= 1.0 for r in body["rewards"])
        assert body["extra_logs"]["reward_failed"] == [0.0, 0.0]
        status, again = post(url, {"prompts": CHATS[:2], "responses": RESPONSES[:2], "baselines": ["Hi.", "Red."]})
        assert status == 200 and len(again["rewards"]) == 2
        # --labels-as-baselines took effect: OpenRLHF's labels are baselines now, so an empty one is refused
        prompt = "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
        status, refused = post(url, {"query": [prompt + "Hi."], "prompts": [prompt], "labels": [""]})
        assert status == 400 and refused["field"] == "labels[0]" and "--labels-as-baselines" in refused["error"]
    finally:
        stop(proc)


# ---------------------------------------------------------------- requests exactly as OpenRLHF builds them
# (github.com/OpenRLHF/OpenRLHF; every release tokenizes the rendered prompt with add_special_tokens=False
# and decodes prompt + response ids with skip_special_tokens=False; `prompts` is the rendered prompt, uncut)

LONG = [
    {
        "role": "user",
        "content": "Read these notes first. "
        + " ".join(f"Note {n}: the meeting moved to room {n + 3}." for n in range(60))
        + " Now say hi.",
    }
]
LONG_CHATS = [CHATS[0], LONG, CHATS[2]]


def rendered(tokenizer, chats: list) -> list[str]:
    return [tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) for chat in chats]


def response_ids(tokenizer, response: str) -> list[int]:
    """vLLM's output token ids: the response and the EOS it stopped on."""
    return tokenizer(response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]


def openrlhf_0_11_body(tokenizer, prompt: str, response: str, label: str, max_prompt_length: int) -> dict:
    """v0.11.0 (as v0.9.1-v0.10.4) openrlhf/utils/agent.py SingleTurnAgentExecutor.execute: L211 tokenize,
    L221-234 keep the prompt's LAST max_prompt_length tokens, L283 decode, L287/L332-336 one query per POST."""
    ids = tokenizer(text=prompt, add_special_tokens=False)["input_ids"]
    if len(ids) > max_prompt_length:
        ids = ids[-max_prompt_length:]
    query = tokenizer.decode(ids + response_ids(tokenizer, response), skip_special_tokens=False)
    return {"query": [query], "prompts": [prompt], "labels": [label]}


def openrlhf_0_9_body(
    tokenizer, prompts: list[str], responses: list[str], labels: list[str], prompt_max_len: int
) -> dict:
    """v0.9.0 (as v0.8.3-) experience_maker.py: L279-287/L332 tokenize_fn(truncation=True, the tokenizer's
    right truncation: the prompt's FIRST prompt_max_len tokens), L405-418 batch_decode(remove_pad_token(...))."""
    ids = tokenizer(prompts, add_special_tokens=False, max_length=prompt_max_len, truncation=True)["input_ids"]
    queries = [
        tokenizer.decode(p + response_ids(tokenizer, r), skip_special_tokens=False) for p, r in zip(ids, responses)
    ]
    return {"query": queries, "prompts": prompts, "labels": labels}


def openrlhf_0_7_body(
    tokenizer, prompts: list[str], responses: list[str], labels: list[str], prompt_max_len: int
) -> dict:
    """v0.7.5 experience_maker.py: L662 tokenize_fn (right truncation), L693-702 LEFT-pad the prompts and
    right-pad the outputs with pad_token_id, L285 batch_decode(seq, skip_special_tokens=False): pads included."""
    ids = tokenizer(prompts, add_special_tokens=False, max_length=prompt_max_len, truncation=True)["input_ids"]
    outs = [response_ids(tokenizer, r) for r in responses]
    pad, width_in, width_out = tokenizer.pad_token_id, max(map(len, ids)), max(map(len, outs))
    rows = [[pad] * (width_in - len(p)) + p + o + [pad] * (width_out - len(o)) for p, o in zip(ids, outs)]
    return {"query": tokenizer.batch_decode(rows, skip_special_tokens=False), "prompts": prompts, "labels": labels}


@pytest.fixture(scope="module")
def tokenizer(reward_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(reward_model)


@pytest.mark.slow
def test_openrlhf_0_11_queries_with_prompts_cut_from_the_left_score_as_the_whole_prompt(server, in_process, tokenizer):
    prompts = rendered(tokenizer, LONG_CHATS)
    assert len(tokenizer(prompts[1], add_special_tokens=False)["input_ids"]) > 64  # the long prompt is really cut
    rewards = []
    for prompt, response in zip(prompts, RESPONSES):
        status, body = post(server, openrlhf_0_11_body(tokenizer, prompt, response, "42", max_prompt_length=64))
        assert status == 200, body
        rewards += body["rewards"]
    assert rewards == pytest.approx(in_process(LONG_CHATS, RESPONSES), abs=1e-5)


@pytest.mark.slow
def test_openrlhf_0_9_batch_with_a_prompt_cut_on_the_right_is_scored(server, in_process, tokenizer):
    prompts = rendered(tokenizer, LONG_CHATS)
    body = openrlhf_0_9_body(tokenizer, prompts, RESPONSES, ["42", "7", "4"], prompt_max_len=64)
    assert not body["query"][1].startswith(prompts[1]) and body["query"][0].startswith(prompts[0])
    status, answer = post(server, body)
    assert status == 200, answer
    assert answer["rewards"] == pytest.approx(in_process(LONG_CHATS, RESPONSES), abs=1e-5)


@pytest.mark.slow
def test_openrlhf_0_7_left_padded_queries_with_special_tokens_are_scored(server, in_process, tokenizer):
    prompts = rendered(tokenizer, CHATS)
    body = openrlhf_0_7_body(tokenizer, prompts, RESPONSES, ["", "", ""], prompt_max_len=1024)
    assert body["query"][1].startswith(tokenizer.pad_token) and body["query"][0].endswith(
        tokenizer.pad_token
    )  # pads on both sides
    status, answer = post(server, body)
    assert status == 200, answer
    assert answer["rewards"] == pytest.approx(in_process(CHATS, RESPONSES), abs=1e-5)


@pytest.mark.slow
def test_a_query_from_another_prompt_gets_400_naming_the_row_and_the_fix(server, tokenizer):
    prompts = rendered(tokenizer, CHATS)
    body = openrlhf_0_9_body(tokenizer, prompts, RESPONSES, ["", "", ""], prompt_max_len=1024)
    body["prompts"] = [
        prompts[0],
        prompts[2],
        prompts[2],
    ]  # row 1 carries row 2's prompt: same system turn, another question
    status, answer = post(server, body)
    assert status == 400 and answer["field"] == "prompts[1]"
    assert "query[1]" in answer["error"] and "send" in answer["error"]


def test_a_prompt_decoded_with_cleaned_up_spaces_still_matches():
    prompt = "<|im_start|>user\nIs it red , or blue ?<|im_end|>\n<|im_start|>assistant\n"
    query = "<|im_start|>user\nIs it red, or blue?<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>"  # clean_up_tokenization_spaces=True (Llama-3)
    batch = parse_request({"query": [query], "prompts": [prompt]})
    assert batch.responses == ["Blue."] and batch.prompts == [[{"role": "user", "content": "Is it red , or blue ?"}]]


@pytest.fixture()
def recording_server():
    """The real HTTP server and handler around a reward function that records what it was called with."""
    calls: list[dict] = []

    def reward(prompts, responses, **kwargs):
        calls.append({"responses": list(responses), **kwargs})
        return [0.5] * len(responses)

    def serve(labels_as_baselines: bool = False, **limits) -> str:
        server = make_server(
            RewardService(reward, "judge", "recorder", labels_as_baselines=labels_as_baselines), port=0, **limits
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/get_reward"

    servers: list = []
    yield serve, calls
    for server in servers:
        server.shutdown()
        server.server_close()


def test_openrlhf_labels_are_judge_baselines_only_when_the_server_is_asked(recording_server):
    serve, calls = recording_server
    prompt = "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    body = {
        "query": [prompt + "42<|im_end|>", prompt + "41<|im_end|>"],
        "prompts": [prompt, prompt],
        "labels": ["42", "42"],
    }
    status, _ = post(serve(labels_as_baselines=False), body)
    assert status == 200 and calls[-1] == {"responses": ["42", "41"]}  # RLVR's bare answers are not baselines
    url = serve(labels_as_baselines=True)
    status, _ = post(url, body)
    assert status == 200 and calls[-1] == {"responses": ["42", "41"], "baseline": ["42", "42"]}
    status, answer = post(url, {**body, "labels": ["42", ""]})
    assert status == 400 and answer["field"] == "labels[1]" and "baseline" in answer["error"]


def test_a_body_over_the_bound_is_refused_with_413_and_a_small_one_is_scored(recording_server):
    serve, calls = recording_server
    url = serve(max_body=2000)
    status, body = post(url, {"prompts": ["Say hi."], "responses": ["Hi."]})
    assert status == 200 and body["rewards"] == [0.5]
    request = urllib.request.Request(
        url, json.dumps({"prompts": ["x" * 3000], "responses": ["Hi."]}).encode(), {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 413 and len(calls) == 1  # refused before parsing or scoring


def post_with(url: str, body: dict, headers: dict) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_with_a_token_a_request_without_it_gets_401_and_is_never_scored(recording_server):
    """Issue 25 item 4: Bearer, or Basic with the token as the password (OpenRLHF's client sends no header of
    its own: the token goes in its URL, http://rlaif:TOKEN@host/..., which `requests` sends as Basic)."""
    serve, calls = recording_server
    url, pair = serve(token="s3cret-token"), {"prompts": ["Say hi."], "responses": ["Hi."]}
    basic = base64.b64encode(b"rlaif:s3cret-token").decode()
    refused = [
        post_with(url, pair, h) for h in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"})
    ]
    assert refused == [401, 401, 401] and calls == []
    assert post_with(url, pair, {"Authorization": "Bearer s3cret-token"}) == 200
    assert post_with(url, pair, {"Authorization": f"Basic {basic}"}) == 200 and len(calls) == 2
    with urllib.request.urlopen(url.removesuffix("/get_reward") + "/health", timeout=30) as response:
        assert response.status == 200  # readiness stays open: it says nothing but the kind and name


def test_a_server_on_a_network_address_never_runs_without_a_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert server_token("127.0.0.1") == (None, False) and server_token("::1") == (None, False)
    token, made = server_token("0.0.0.0")
    assert made and len(token) >= 32 and server_token("0.0.0.0")[0] != token  # a new random one each time
    monkeypatch.setenv(TOKEN_ENV, "chosen")
    assert server_token("0.0.0.0") == ("chosen", False) and server_token("127.0.0.1") == ("chosen", False)
    with pytest.raises(ValueError, match="needs a token"):
        make_server(RewardService(lambda p, r, **k: [0.0] * len(r), "model", "m"), host="0.0.0.0", port=0)


def test_the_client_sends_the_token_from_the_environment(recording_server, monkeypatch):
    serve, calls = recording_server
    url = serve(token="s3cret-token")
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    assert post_rewards(["Say hi."], ["Hi."], url=url) == [0.5] and len(calls) == 1


def test_too_many_responses_or_too_deep_json_is_refused_before_any_call(recording_server, monkeypatch):
    """Issue 25 item 4: one request cannot ask for unbounded calls, and deep nesting is a 400, not a closed connection."""
    import rlaif.training.reward_server as reward_server

    monkeypatch.setattr(reward_server, "MAX_RESPONSES", 3)
    serve, calls = recording_server
    url = serve()
    status, body = post(url, {"prompts": ["Say hi."] * 4, "responses": ["Hi."] * 4})
    assert status == 413 and "4 responses in one request, at most 3" in body["error"] and calls == []
    status, body = post(url, b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and body == {"error": "body: JSON nested too deep", "field": "body"}
    assert post(url, {"prompts": ["Say hi."] * 3, "responses": ["Hi."] * 3})[0] == 200 and len(calls) == 1


def test_a_negative_content_length_is_answered_400(recording_server):
    serve, calls = recording_server
    port = int(serve().rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 400") and calls == []


def test_routes_health_and_unknown_paths(recording_server):
    serve, _ = recording_server
    url = serve()
    base = url.removesuffix("/get_reward")
    for path in ("/health", "/health/"):
        with urllib.request.urlopen(base + path, timeout=30) as response:
            assert json.loads(response.read()) == {"status": "ok", "kind": "judge", "name": "recorder"}
    for path in ("/get_reward/", "/"):
        assert post(base + path, {"prompts": ["Say hi."], "responses": ["Hi."]})[0] == 200
    status, body = post(base + "/nowhere", {"prompts": ["Say hi."], "responses": ["Hi."]})
    assert status == 404 and body["error"] == "no route POST /nowhere: use POST /get_reward"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(base + "/metrics", timeout=30)
    assert (
        info.value.code == 404
        and json.loads(info.value.read())["error"] == "no route GET /metrics: use POST /get_reward or GET /health"
    )


def test_a_failing_reward_function_answers_500_and_the_server_keeps_serving():
    def reward(prompts, responses, **kwargs):
        if responses == ["boom"]:
            raise RuntimeError("out of memory")
        return [1.0] * len(responses)

    server = make_server(RewardService(reward, "model", "flaky"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/get_reward"
        status, body = post(url, {"prompts": ["Say hi."], "responses": ["boom"]})
        assert status == 500 and body["error"] == "the reward function failed: RuntimeError: out of memory"
        assert post(url, {"prompts": ["Say hi."], "responses": ["Hi."]}) == (
            200,
            {"rewards": [1.0], "scores": [1.0], "extra_logs": {"reward_failed": [0.0]}},
        )
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_in_use_fails_when_the_server_is_made():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError) as info:
            make_server(RewardService(lambda p, r: [0.0] * len(r), "model", "m"), port=taken.getsockname()[1])
    assert info.value.errno == errno.EADDRINUSE and info.value.strerror


def test_the_verl_client_side_of_the_file_needs_only_the_standard_library():
    """verl loads the file by path for compute_score (as verl/trainer/ppo/reward.py does): that must not pull in the server's libraries."""
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('custom_module', sys.argv[1]); m = importlib.util.module_from_spec(spec); "
        "sys.modules['custom_module'] = m; spec.loader.exec_module(m); print(sorted(n for n in ('pydantic', 'starlette', 'uvicorn', 'rlaif') if n in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "rlaif/training/reward_server.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert out.stdout.strip() == "[]"


def test_a_request_past_its_time_gets_504_while_scoring_and_the_next_503_while_waiting():
    """Issue 25 item 4: a request's time is bounded. A scoring call that hangs answers 504 at the limit (it cannot
    be stopped from outside its thread, so it keeps the turn); a request waiting behind it answers 503 with
    Retry-After; once the hung call ends, the next request is scored."""
    release, calls = threading.Event(), []

    def reward(prompts, responses, **kwargs):
        calls.append(list(responses))
        if responses == ["hang"]:
            release.wait(60)
        return [0.5] * len(responses)

    server = make_server(RewardService(reward, "judge", "slow"), port=0, timeout_s=3.0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/get_reward"
    try:
        assert post(url, {"prompts": ["Say hi."], "responses": ["hang"]})[0] == 504
        status, body = post(url, {"prompts": ["Say hi."], "responses": ["Hi."]})
        assert status == 503 and "busy" in body["error"] and calls == [["hang"]]  # never started scoring
        release.set()
        deadline = time.monotonic() + 30
        while (status := post(url, {"prompts": ["Say hi."], "responses": ["Hi."]})[0]) == 503:
            assert time.monotonic() < deadline, "the turn was never given back"
        assert status == 200 and calls[-1] == ["Hi."]
    finally:
        release.set()
        server.shutdown()
        server.server_close()
