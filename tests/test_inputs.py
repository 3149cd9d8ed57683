import json

import pytest

from rlaif.core.errors import InputError
from rlaif.core.inputs import load_prompts


def test_loads_text_and_chat_rows_with_system(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"id": "x", "prompt": "hi"})
        + "\n\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            }
        )
        + "\n"
    )
    prompts = load_prompts(path, system="be brief")
    assert [p.id for p in prompts] == ["x", "3"]
    assert prompts[0].messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert prompts[1].messages[-1] == {"role": "user", "content": "c"}


@pytest.mark.parametrize(
    "line, expected",
    [
        ("{not json", r"row 2: not valid JSON"),
        ('{"text": "x"}', r"row 2: no 'prompt' or 'messages' field"),
        ('{"prompt": ""}', r"row 2, field 'prompt': the prompt is empty"),
        ('{"messages": [{"role": "user"}]}', r"row 2, field 'messages'"),
        ('{"id": "a", "prompt": "again"}', r"row 2, field 'id': duplicate id 'a'"),
        ('["a"]', r"row 2: each row must be a JSON object"),
    ],
)
def test_malformed_rows_name_file_row_and_field(tmp_path, line, expected):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prompt": "ok"}\n' + line + "\n")
    with pytest.raises(InputError, match=expected) as info:
        load_prompts(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="prompt file not found"):
        load_prompts(tmp_path / "none.jsonl")


# one parser of chat messages for prompt files, gold files and evaluation sets (rlaif.core.inputs.chat_messages)
def _read_as(kind: str, path, value):
    from rlaif.core.gold import load_gold
    from rlaif.core.inputs import load_prompts
    from rlaif.quality.decontam import read_eval_texts

    row = {"prompt": value, "chosen": "a", "rejected": "b"}
    path.write_text(json.dumps(row) + "\n")
    return {
        "prompts": lambda: load_prompts(path)[0].messages,
        "gold": lambda: load_gold(path)[0].prompt,
        "eval": lambda: read_eval_texts(path)[0],
    }[kind]()


@pytest.mark.parametrize("kind", ["prompts", "gold", "eval"])
@pytest.mark.parametrize(
    "value, problem",
    [
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "field 'prompt': the last message must be from the user",
        ),
        ([{"role": "user"}], "field 'prompt': each message needs 'role'"),
        ([], "field 'prompt': must be a non-empty list of messages"),
        ("   ", "field 'prompt': the prompt is empty"),
    ],
    ids=["last-not-user", "no-content", "empty-list", "blank"],
)
def test_prompts_gold_and_eval_files_read_chat_messages_alike(tmp_path, kind, value, problem):
    with pytest.raises(InputError) as caught:
        _read_as(kind, tmp_path / "f.jsonl", value)
    assert "f.jsonl, row 1" in str(caught.value) and problem in str(caught.value)


@pytest.mark.parametrize(
    "kind, expected",
    [("prompts", [{"role": "user", "content": "Hi"}]), ("gold", [{"role": "user", "content": "Hi"}]), ("eval", "Hi")],
)
def test_a_plain_string_is_one_user_turn_everywhere(tmp_path, kind, expected):
    assert _read_as(kind, tmp_path / "f.jsonl", "Hi") == expected
