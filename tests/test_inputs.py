import json

import pytest

from rlaif.errors import InputError
from rlaif.inputs import load_prompts


def test_loads_text_and_chat_rows_with_system(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"id": "x", "prompt": "hi"}) + "\n\n"
        + json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}) + "\n"
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
