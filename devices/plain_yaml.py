"""The one way urbanwatch reads YAML (rule files, routing, the device catalogue): safe, bounded,
and without aliases.

An alias (``*name``) lets a few hundred bytes stand for billions of values (the "billion
laughs" bomb), which then cost minutes and gigabytes wherever they are walked. None of our files
needs one, so every alias is refused while the text is composed, before anything is built,
with a `RefusedYAMLError` (a `yaml.YAMLError`) that names its line like a syntax error does.
Text longer than `MAX_CHARS` is refused unread, with the same error: a caller can tell text that
was refused outright (hostile, or far too large) from text with a mistake in it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_CHARS = 8 << 20


class RefusedYAMLError(yaml.MarkedYAMLError):
    """Text refused before it is read as data: it holds an alias, or is longer than
    `MAX_CHARS`."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise RefusedYAMLError(
                None, None, "aliases (*name) are not allowed here; write the value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

    def construct_checked_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date or time, or an error at its line: `2026-02-30` looks like one but is not."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time: {exc}", node.start_mark
            ) from None


_NoAliasLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _NoAliasLoader.construct_checked_timestamp
)


def compose(text: str) -> yaml.Node | None:
    """The node tree of `text` (it knows each value's line); None for an empty document."""
    return load(text)[0]


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree of `text` and the plain data it holds (dicts, lists, scalars).

    Raises:
        RefusedYAMLError: an alias, or text longer than `MAX_CHARS`.
        yaml.YAMLError: invalid YAML.
    """
    if len(text) > MAX_CHARS:
        raise RefusedYAMLError(
            problem=f"the text is longer than {MAX_CHARS} characters; split it up")
    loader = _NoAliasLoader(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
