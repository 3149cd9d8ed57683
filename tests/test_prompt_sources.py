"""Prompts from where people keep them (rlaif/store/prompt_sources.py, the recipe's `prompts:`): JSON Lines,
Parquet, CSV, a folder of Parquet files, an earlier version, and a Hugging Face Hub dataset (the stand-in Hub,
tests/hub_server.py), pinned to the commit it was read at. Runs go against tests/det_server.py."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import InputError, RecipeError
from rlaif.core.inputs import iter_prompts
from rlaif.store.prompt_sources import resolve_prompts
from rlaif.store.versions import load_manifest, read_table
from tests.badinput import ROOT, cli_env, run_cli, write_recipe
from tests.det_server import DetServer
from tests.hub_server import start_hub

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOKEN = "hf_alice_token"
QUESTIONS = [f"Question {i}: what is {i} times {i + 1}?" for i in range(12)]


def spec(**prompts):
    return parse_recipe(
        {"name": "src", "prompts": prompts, "policies": [{"name": "p", "model": "smollm2-135m"}]}
    ).prompts


def texts(store: Path, **prompts) -> list[tuple[str, str]]:
    """(id, last user text) of each prompt the source gives."""
    source = spec(**prompts)
    found = resolve_prompts(source, store, source.limit)
    return [(p.id, p.messages[-1]["content"]) for p in iter_prompts(found.file, source.system, source.limit)]


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


ROWS = [{"instruction": q, "lang": "en" if i % 3 else "de", "key": f"k{i}"} for i, q in enumerate(QUESTIONS)]


# -- files ------------------------------------------------------------------------------------------------------


def test_parquet_csv_a_parquet_folder_and_json_lines_give_the_same_prompts(tmp_path):
    store = tmp_path / "store"
    parquet = write_parquet(tmp_path / "p.parquet", ROWS)
    write_parquet(tmp_path / "folder" / "a" / "part-0.parquet", ROWS[:5])
    write_parquet(tmp_path / "folder" / "b" / "part-1.parquet", ROWS[5:])
    table_csv = write_csv(tmp_path / "p.csv", ROWS)
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    read = [
        texts(store, path=str(path), column="instruction", id_column="key")
        for path in (parquet, tmp_path / "folder", table_csv, jsonl)
    ]
    assert read[0] == [(f"k{i}", q) for i, q in enumerate(QUESTIONS)]
    assert read[1] == read[2] == read[3] == read[0]
    # `format:` overrides the extension
    renamed = tmp_path / "prompts.data"
    renamed.write_bytes(parquet.read_bytes())
    assert texts(store, path=str(renamed), format="parquet", column="instruction", id_column="key") == read[0]


def test_ids_come_from_the_content_where_a_row_has_none_and_repeat_once_per_copy(tmp_path):
    rows = [{"prompt": "same"}, {"prompt": "other"}, {"prompt": "same"}]
    got = texts(tmp_path / "store", path=str(write_parquet(tmp_path / "p.parquet", rows)))
    first, second, third = (prompt_id for prompt_id, _ in got)
    assert re.fullmatch(r"[0-9a-f]{12}", first) and third == f"{first}-2" and second != first
    # the same prompt elsewhere gets the same id
    assert texts(tmp_path / "store", path=str(write_parquet(tmp_path / "q.parquet", rows[1:2])))[0][0] == second


def test_where_shuffle_and_limit_select_the_same_rows_every_time(tmp_path):
    path = str(write_parquet(tmp_path / "p.parquet", ROWS))
    kept = [q for i, q in enumerate(QUESTIONS) if i % 3]
    assert [t for _, t in texts(tmp_path / "s1", path=path, column="instruction", where={"lang": "en"})] == kept
    assert [
        t for _, t in texts(tmp_path / "s1", path=path, column="instruction", where={"lang": ["en", "de"]})
    ] == QUESTIONS
    shuffled = texts(tmp_path / "s2", path=path, column="instruction", shuffle={"seed": 3}, limit=5)
    assert (
        len(shuffled) == 5 and [t for _, t in shuffled] != QUESTIONS[:5] and {t for _, t in shuffled} <= set(QUESTIONS)
    )
    again = texts(tmp_path / "s3", path=path, column="instruction", shuffle={"seed": 3}, limit=5)  # a fresh store
    assert again == shuffled
    assert texts(tmp_path / "s3", path=path, column="instruction", shuffle={"seed": 4}, limit=5) != shuffled


def test_a_chat_column_is_cut_at_its_last_user_turn_when_asked(tmp_path):
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
    ]
    path = str(write_parquet(tmp_path / "c.parquet", [{"conversation": chat, "id": 1}]))
    with pytest.raises(InputError) as exc:
        texts(tmp_path / "store", path=path, messages_column="conversation")
    assert "row 1, field 'conversation': the last message must be from the user" in str(exc.value)
    assert "drop_last_assistant: true" in str(exc.value)
    source = spec(path=path, messages_column="conversation", drop_last_assistant=True)
    (prompt,) = iter_prompts(resolve_prompts(source, tmp_path / "store").file)
    assert prompt.id == "1" and prompt.messages == chat[:3]
    # a chat stored as JSON text in a CSV cell
    cell = write_csv(tmp_path / "c.csv", [{"conversation": json.dumps(chat[:3])}])
    assert texts(tmp_path / "store", path=str(cell), messages_column="conversation")[0][1] == "Name a prime."


def test_bad_sources_name_the_row_and_the_columns_there_are(tmp_path):
    store = tmp_path / "store"
    path = str(write_parquet(tmp_path / "p.parquet", ROWS))
    with pytest.raises(InputError) as exc:
        texts(store, path=path)
    assert str(exc.value) == (
        f"{path}, row 1: no column 'prompt' (the columns are: instruction, key, lang) - set prompts.column (text) "
        "or prompts.messages_column (a chat) to the column that holds the prompt"
    )
    with pytest.raises(InputError, match=r"row 1: no column 'language' \(the columns are: instruction, key, lang\)"):
        texts(store, path=path, column="instruction", where={"language": "en"})
    with pytest.raises(InputError, match="no prompts selected"):
        texts(store, path=path, column="instruction", where={"lang": "fr"})
    bad = write_parquet(tmp_path / "bad.parquet", [{"prompt": "ok"}, {"prompt": "ok too"}, {"prompt": ""}])
    with pytest.raises(InputError, match=r"bad.parquet, row 3, field 'prompt': the prompt is empty"):
        texts(store, path=str(bad))
    assert not list((store / "sources").glob("*.jsonl")), "nothing is written half-way"
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(InputError, match=r"cannot tell the format from the extension '.txt'"):
        texts(store, path=str(tmp_path / "p.txt"))
    with pytest.raises(RecipeError, match="prompts takes exactly one source, got path and hub"):
        spec(path=path, hub="a/b")
    with pytest.raises(RecipeError, match="split applies to a Hub dataset only"):
        spec(path=path, split="test")


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="needs ../shared/data (the project's shared data, beside the checkout)"
)
def test_the_shared_prompt_sets_read_directly_from_their_files(tmp_path):
    for folder, rows in (("prompts-self-instruct", 427), ("prompts-mt-bench", 158)):
        source = spec(path=str(SHARED / folder / "prompts.jsonl"))
        found = resolve_prompts(source, tmp_path / "store")
        assert found.file == SHARED / folder / "prompts.jsonl"  # read as it is: no copy
        assert sum(1 for _ in iter_prompts(found.file)) == rows


# -- through `rlaif run` -------------------------------------------------------------------------------------------


def recipe(tmp_path: Path, server: DetServer, prompts: dict, name: str = "src", **extra) -> Path:
    endpoint = {"backend": "openai", "base_url": server.base_url, "model": "det"}
    data = {
        "name": name,
        "prompts": prompts,
        "policies": [{"name": "pol", **endpoint, "params": {"temperature": 0.9, "max_tokens": 16}}],
        "samples_per_prompt": 2,
        "judge": endpoint,
        "filters": {"consistency": False, "min_margin": 0.0},
        **extra,
    }
    return write_recipe(tmp_path, data, f"{name}-{len(list(tmp_path.glob('*.yaml')))}.yaml")


def run(tmp_path: Path, server: DetServer, prompts: dict, store: Path, *args: str, env=None, process=False, **extra):
    result = run_cli(
        "run",
        str(recipe(tmp_path, server, prompts, **extra)),
        "--store",
        str(store),
        "--no-prefect",
        *args,
        env=env,
        process=process,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return re.search(r"version: (\S+)", result.stdout)[1], result


def instruction_column(path: Path) -> dict:
    """`prompts:` reading the file's `instruction` column."""
    return {"path": str(path), "column": "instruction"}


def test_parquet_csv_and_version_sources_through_rlaif_run(tmp_path):
    store = tmp_path / "store"
    with DetServer() as server:
        parquet, _ = run(tmp_path, server, instruction_column(write_parquet(tmp_path / "p.parquet", ROWS[:4])), store)
        from_csv, _ = run(tmp_path, server, instruction_column(write_csv(tmp_path / "p.csv", ROWS[:4])), store)
        calls = server.calls
        again, result = run(tmp_path, server, {"version": parquet}, store)
        assert server.calls == calls, "the same prompts, sampled and judged before: every call cached"
    prompts = read_table(store, parquet, "prompts")
    assert [p["messages"] for p in read_table(store, from_csv, "prompts")] == [p["messages"] for p in prompts]
    assert [p["messages"][-1]["content"] for p in prompts] == QUESTIONS[:4]
    assert read_table(store, again, "prompts") == prompts
    lineage = load_manifest(store, parquet)["inputs"]["prompts"]
    assert lineage["path"] == str(tmp_path / "p.parquet") and lineage["format"] == "parquet" and lineage["rows"] == 4
    assert len(lineage["sha256"]) == 64 and len(lineage["prompt_file_sha256"]) == 64
    assert load_manifest(store, again)["inputs"]["prompts"]["version"] == parquet
    assert load_manifest(store, again)["recipe"]["prompts"] == {"version": parquet, "system": None, "limit": None}


def test_an_incremental_run_adds_the_new_rows_of_a_parquet_source(tmp_path):
    store = tmp_path / "store"
    with DetServer() as server:
        first, _ = run(tmp_path, server, instruction_column(write_parquet(tmp_path / "a.parquet", ROWS[:4])), store)
        before = server.calls
        child, _ = run(
            tmp_path,
            server,
            instruction_column(write_parquet(tmp_path / "b.parquet", ROWS[:6])),
            store,
            parent=first,
        )
        assert server.calls - before == 2 * (2 + 2), "only the two new prompts: two samples, one pair in both orders"
    assert load_manifest(store, child)["parents"] == [first]
    assert len(read_table(store, child, "prompts")) == 6


# -- the Hub -------------------------------------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path, monkeypatch):
    for offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(offline, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = start_hub(tmp_path / "hub", {TOKEN: ["alice"]})
    yield server
    server.stop()


def parquet_bytes(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def publish(hub, repo: str, rows: list[dict], private: bool = False) -> str:
    """A commit of `rows` as the dataset's one Parquet file (the repo is made first when it is not there)."""
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    add = CommitOperationAdd("data/train-00000-of-00001.parquet", parquet_bytes(rows))
    return api.create_commit(repo, [add], commit_message="rows", repo_type="dataset").oid


def hub_env(hub, tmp_path: Path, **extra) -> dict:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"), **extra}


@pytest.mark.slow
def test_a_hub_dataset_is_pinned_to_its_commit_and_read_again_offline_without_a_call(hub, tmp_path):
    store = tmp_path / "store"
    first = publish(hub, "alice/prompts", ROWS[:4])
    source = {"hub": "alice/prompts", "column": "instruction", "id_column": "key"}
    env = hub_env(hub, tmp_path)
    with DetServer() as server:
        at_a, _ = run(tmp_path, server, source, store, env=env, process=True)
        second = publish(hub, "alice/prompts", ROWS[:6])
        at_main, _ = run(tmp_path, server, source, store, env=env, process=True)
        pinned, _ = run(tmp_path, server, {**source, "revision": first}, store, env=env, process=True)
        hub.requests.clear()
        offline, result = run(tmp_path, server, source, store, env={**env, "HF_HUB_OFFLINE": "1"}, process=True)
        assert hub.requests == [], "the commit and its rows were read before: offline, no call at all"
    assert at_main != at_a and pinned == at_a and offline == at_main
    assert "already in the store" in result.stdout
    manifest = load_manifest(store, at_a)
    assert manifest["recipe"]["prompts"]["revision"] == first, "the commit is what the version records and hashes"
    lineage = manifest["inputs"]["prompts"]
    assert {k: lineage[k] for k in ("hub", "split", "revision", "commit", "rows")} == {
        "hub": "alice/prompts",
        "split": "train",
        "revision": "main",
        "commit": first,
        "rows": 4,
    }
    assert load_manifest(store, at_main)["inputs"]["prompts"]["commit"] == second
    shown = run_cli("datasets", "lineage", at_a, "--store", str(store), env={"COLUMNS": "200"})
    assert f"prompts: Hub dataset alice/prompts, split train, at {first[:12]} (main) (4 rows)" in shown.stdout
    assert [p["id"] for p in read_table(store, at_main, "prompts")] == [f"k{i}" for i in range(6)]


@pytest.mark.slow
def test_a_private_hub_chat_set_needs_the_token_and_streams_a_limited_selection(hub, tmp_path):
    store = tmp_path / "store"
    chats = [
        {
            "conversation": [{"role": "user", "content": q}, {"role": "assistant", "content": "..."}],
            "lang": row["lang"],
        }
        for q, row in zip(QUESTIONS, ROWS)
    ]
    publish(hub, "alice/prompts", chats, private=True)
    source = {
        "hub": "alice/prompts",
        "messages_column": "conversation",
        "drop_last_assistant": True,
        "where": {"lang": "en"},
        "limit": 3,
    }
    with DetServer() as server:
        denied = run_cli(
            "run",
            str(recipe(tmp_path, server, source)),
            "--store",
            str(store),
            "--no-prefect",
            env=hub_env(hub, tmp_path, HF_TOKEN=None),
            process=True,
            timeout=300,
        )
        assert denied.returncode == 2 and server.calls == 0, denied.stdout + denied.stderr
        assert "alice/prompts on http://127.0.0.1" in denied.stderr and "HF_TOKEN" in denied.stderr
        assert "Traceback" not in denied.stderr
        version, _ = run(tmp_path, server, source, store, env=hub_env(hub, tmp_path), process=True)
    prompts = read_table(store, version, "prompts")
    assert [p["messages"][-1]["content"] for p in prompts] == [q for i, q in enumerate(QUESTIONS) if i % 3][:3]
    assert load_manifest(store, version)["inputs"]["prompts"]["streamed"] is True


@pytest.mark.slow
def test_a_missing_repo_split_or_column_exits_2_before_any_call(hub, tmp_path):
    publish(hub, "alice/prompts", ROWS[:3])
    env = hub_env(hub, tmp_path)
    cases = {
        "alice/nothing": ("no such dataset", {}),
        "alice/prompts": ("check prompts.split", {"split": "test"}),
    }
    with DetServer() as server:
        for repo, (expected, extra) in cases.items():
            result = run_cli(
                "run",
                str(recipe(tmp_path, server, {"hub": repo, "column": "instruction", **extra})),
                "--store",
                str(tmp_path / "store"),
                "--no-prefect",
                env=env,
                process=True,
                timeout=300,
            )
            assert result.returncode == 2 and expected in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        missing = run_cli(
            "run",
            str(recipe(tmp_path, server, {"hub": "alice/prompts"})),
            "--store",
            str(tmp_path / "store"),
            "--no-prefect",
            env=env,
            process=True,
            timeout=300,
        )
        assert (
            missing.returncode == 2
            and "no column 'prompt' (the columns are: instruction, key, lang)" in missing.stderr
        )
        offline = run_cli(
            "run",
            str(recipe(tmp_path, server, {"hub": "alice/prompts", "column": "instruction"})),
            "--store",
            str(tmp_path / "fresh-store"),
            "--no-prefect",
            env={**env, "HF_HUB_OFFLINE": "1"},
            process=True,
            timeout=300,
        )
        assert offline.returncode == 2 and "Traceback" not in offline.stderr, offline.stderr
        assert (
            "alice/prompts@main: HF_HUB_OFFLINE is set and this revision was never resolved with this store"
            in offline.stderr
        )
        assert server.calls == 0


# -- gold sets from the same sources --------------------------------------------------------------------------------

REWARD_BENCH = [  # allenai/reward-bench's columns
    {
        "prompt": f"Task {i}",
        "chosen": f"GOOD answer {i}",
        "chosen_model": "a",
        "rejected": f"meh {i}",
        "rejected_model": "b",
        "subset": "alpacaeval-easy",
        "id": i,
    }
    for i in range(4)
]
SCRIPTED = (  # `rlaif` in a child process whose local judge is tests/test_evaluate.py's scripted one (no model loads)
    "import sys; from rlaif import backends; "
    "backends.BACKENDS['transformers'] = 'tests.test_evaluate:ScriptedBackend'; "
    "from rlaif.cli import app; sys.argv[0] = 'rlaif'; app()"
)


def scripted_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPTED, *args],
        cwd=ROOT,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_eval_judge_reads_a_public_set_from_the_hub_and_again_offline(hub, tmp_path):
    publish(hub, "alice/gold", REWARD_BENCH, private=True)
    store, env = tmp_path / "store", hub_env(hub, tmp_path)
    args = ["eval-judge", "recipes/demo.yaml", "--gold", "hub:alice/gold", "--gold-format", "reward-bench"]
    args += ["--store", str(store), "--json"]
    result = scripted_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 4 and data["agreement"] == 1.0 and data["gold"]["format"] == "reward-bench"
    assert {k: data["gold"][k] for k in ("hub", "split", "revision")} == {
        "hub": "alice/gold",
        "split": "train",
        "revision": "main",
    }
    assert data["gold"]["commit"] == hub.repo("alice/gold")["branches"]["main"]
    hub.requests.clear()
    offline = scripted_cli(*args, env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and hub.requests == [], offline.stderr
    assert json.loads(offline.stdout)["agreement"] == 1.0
    split = scripted_cli(*args[:-1], "--gold-split", "test", env=env)
    assert split.returncode == 2 and "check prompts.split" not in split.stderr and "test" in split.stderr, split.stderr


def test_a_recipe_gold_source_in_a_public_format_is_measured_and_a_missing_one_stops_before_any_call(tmp_path):
    gold = write_parquet(tmp_path / "rb.parquet", REWARD_BENCH)
    store = tmp_path / "store"
    prompts = instruction_column(write_parquet(tmp_path / "p.parquet", ROWS[:2]))
    with DetServer() as server:
        judge = {"backend": "openai", "base_url": server.base_url, "model": "det"}
        missing = run_cli(
            "run",
            str(recipe(tmp_path, server, prompts, judge={**judge, "gold": str(tmp_path / "none.jsonl")})),
            "--store",
            str(store),
            "--no-prefect",
        )
        assert missing.returncode == 2 and "none.jsonl: gold file not found" in missing.stderr, missing.stderr
        assert server.calls == 0, "the gold set is read before the run pays for any call"
        version, _ = run(
            tmp_path, server, prompts, store, judge={**judge, "gold": {"path": str(gold), "format": "reward-bench"}}
        )
    quality = load_manifest(store, version)["eval"]
    assert quality["n"] == 4
    assert quality["gold"]["path"] == str(gold) and quality["gold"]["format"] == "reward-bench"
