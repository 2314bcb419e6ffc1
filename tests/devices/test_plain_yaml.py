"""YAML is read without aliases (alias bombs) and within a size bound; the rest is plain YAML."""

from __future__ import annotations

import pytest
import yaml

from devices import plain_yaml


def test_plain_yaml_is_read_with_its_lines() -> None:
    root, data = plain_yaml.load("rules:\n  - id: a\n    when: value > 1\n")
    assert data == {"rules": [{"id": "a", "when": "value > 1"}]}
    assert isinstance(root, yaml.MappingNode) and root.value[0][1].start_mark.line == 1
    assert plain_yaml.load("") == (None, None)


def test_an_anchor_without_an_alias_is_harmless() -> None:
    assert plain_yaml.load("a: &x 1\nb: 2\n")[1] == {"a": 1, "b": 2}


@pytest.mark.parametrize("text", [
    "a: &x [1, 2]\nb: *x\n",
    "base: &b {k: 1}\nmerged:\n  <<: *b\n",
    "- &l [lol, lol]\n- [*l, *l]\n",
], ids=["alias", "merge-key", "nested"])
def test_an_alias_is_refused_with_its_line(text: str) -> None:
    with pytest.raises(plain_yaml.RefusedYAMLError, match="aliases") as refused:
        plain_yaml.load(text)
    mark = refused.value.problem_mark  # type: ignore[attr-defined]
    assert mark.line + 1 == text[: text.index("*")].count("\n") + 1


def test_text_beyond_the_bound_is_refused_unread() -> None:
    with pytest.raises(plain_yaml.RefusedYAMLError, match="longer than"):
        plain_yaml.load("#" * (plain_yaml.MAX_CHARS + 1))

