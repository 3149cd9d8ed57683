"""A built-in alias from its upstream Hub repository (`make judges FROM=hub`: rlaif.weights.hub).

Against the stand-in Hub (tests/hub_server.py, a real HTTP server): a tiny random Qwen2 model is
published as Qwen/Qwen2.5-Coder-0.5B-Instruct, `python -m rlaif.weights resolve --from-hub`
downloads it into the alias's cache folder as a user would run it, and a real `rlaif run` on the
alias records the repository and commit in its manifest. The pinned packages are not needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.badinput import run_cli
from tests.hub_server import start_hub

REPO = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
ALIAS = "qwen2.5-coder-0.5b"
TOKEN = "hf_qwen_publisher"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def tiny_qwen(folder: Path) -> Path:
    """A random Qwen2 model of ~0.1M parameters with a byte-level BPE tokenizer and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(["Which response is better? A or B. Output A or B."] * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHATML
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    import torch

    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("model-hub")
    server = start_hub(root / "hub", {TOKEN: ["Qwen"]})
    from huggingface_hub import HfApi

    api = HfApi(endpoint=server.url, token=TOKEN)
    api.create_repo(REPO, repo_type="model")
    api.upload_folder(
        repo_id=REPO, repo_type="model", folder_path=str(tiny_qwen(root / "tiny")), commit_message="tiny qwen2"
    )
    yield server
    server.stop()


def env_for(hub, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment on a machine that reaches the Hub (here the stand-in), with a fresh rlaif cache."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "RLAIF_CACHE": str(tmp_path / "cache"),
        "HF_TOKEN": "",
        **extra,
    }


def resolve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`make judges FROM=hub`'s command, as the Makefile runs it."""
    return subprocess.run(
        [sys.executable, "-m", "rlaif.weights", "resolve", "--from-hub", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def head_commit(hub) -> str:
    return hub.repo(REPO, "model")["branches"]["main"]


def downloads(hub) -> int:
    return sum(1 for method, path in hub.requests if method == "GET" and "/resolve/" in path)


@pytest.mark.slow
def test_alias_resolves_to_the_upstream_repository_and_the_manifest_says_so(hub, tmp_path):
    env = env_for(hub, tmp_path)
    done = resolve(env, ALIAS)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "cache" / "models" / ALIAS
    commit = head_commit(hub)
    assert json.loads((folder / "rlaif-source.json").read_text()) == {"kind": "hub", "repo": REPO, "revision": commit}
    assert commit in done.stdout and not (folder / ".cache").exists() and not list(folder.glob("*.gguf"))

    # asked again at the same commit: nothing is downloaded again
    before = downloads(hub)
    again = resolve(env, ALIAS)
    assert again.returncode == 0, again.stderr[-3000:]
    assert downloads(hub) == before

    # a real run on the alias (policy and judge): no network at run time, the manifest names repo and commit
    recipe = {
        "name": "hub-alias",
        "prompts": {"path": str(Path("data/prompts.jsonl").resolve()), "limit": 1},
        "policies": [
            {
                "name": "tiny",
                "backend": "transformers",
                "model": ALIAS,
                "params": {"max_tokens": 4, "temperature": 1.0, "seed": 0},
            }
        ],
        "samples_per_prompt": 2,
        "judge": {"backend": "transformers", "model": ALIAS, "debias": False},
        "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False, "response_near_duplicate": None},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    store = tmp_path / "store"
    run = run_cli(
        "run",
        str(path),
        "--no-prefect",
        "--store",
        str(store),
        env={**env, "HF_HUB_OFFLINE": "1"},
        timeout=300,
        process=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    manifest = json.loads(next(store.glob("versions/*/manifest.json")).read_text())
    expected = {"kind": "hub", "repo": REPO, "revision": commit}
    assert manifest["models"]["judge"]["source"] == expected
    assert manifest["models"]["policies"][0]["source"] == expected


@pytest.mark.slow
def test_a_new_upstream_commit_is_downloaded_and_changes_the_cache_identity(hub, tmp_path, monkeypatch):
    env = env_for(hub, tmp_path)
    assert resolve(env, ALIAS).returncode == 0
    monkeypatch.setenv("RLAIF_CACHE", env["RLAIF_CACHE"])
    from rlaif.calls.engine import backend_identity
    from rlaif.config.recipe import ModelSpec

    spec = ModelSpec(backend="transformers", model=ALIAS)
    first = backend_identity(spec)
    assert first["weights"] == f"hub:{REPO}@{head_commit(hub)}"

    from huggingface_hub import HfApi

    HfApi(endpoint=hub.url, token=TOKEN).upload_file(
        path_or_fileobj=b"{}", path_in_repo="extra.json", repo_id=REPO, commit_message="later"
    )
    later = resolve(env, ALIAS)
    assert later.returncode == 0, later.stderr[-3000:]
    second = backend_identity(spec)
    assert second["weights"] == f"hub:{REPO}@{head_commit(hub)}" != first["weights"]

    # a pinned revision (the first commit) goes back to it
    old = first["weights"].rsplit("@", 1)[1]
    assert resolve(env, "--revision", old, ALIAS).returncode == 0
    assert backend_identity(spec) == first


def test_pinned_packages_keep_their_cache_identity(tmp_path, monkeypatch):
    """No upstream download: the identity is the one earlier runs' caches were written under."""
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path / "empty-cache"))
    from rlaif.calls.engine import backend_identity
    from rlaif.config.recipe import ModelSpec

    assert backend_identity(ModelSpec(backend="transformers", model=ALIAS, dtype="float32")) == {
        "backend": "transformers",
        "model": ALIAS,
        "dtype": "float32",
    }


@pytest.mark.parametrize(
    ("args", "extra", "needles"),
    [
        ((ALIAS,), {"HF_HUB_OFFLINE": "1"}, ["cannot reach", "unset HF_HUB_OFFLINE", "make judges"]),
        (
            ("--revision", "no-such-branch", ALIAS),
            {},
            [f"{REPO}@no-such-branch: no such tag, branch or commit", "--revision"],
        ),
        (("smollm2-135m",), {}, ["HuggingFaceTB/SmolLM2-135M-Instruct", "no such model repository", "HF_TOKEN"]),
        (("not-an-alias",), {}, ["'not-an-alias' is not a built-in alias", ALIAS]),
    ],
)
def test_hub_failures_say_what_to_do_and_leave_no_folder(hub, tmp_path, args, extra, needles):
    env = env_for(hub, tmp_path, **extra)
    done = resolve(env, *args)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and all(needle in message for needle in needles), message
    models = tmp_path / "cache" / "models"
    assert not models.exists() or not [p for p in models.iterdir() if not p.name.endswith(".lock")]
