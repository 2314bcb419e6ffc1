"""Edit a rule file's text in place: only the rules that changed are rewritten, so the comments
elsewhere (the shipped pack notes the source of every threshold) survive an edit by the API."""

from __future__ import annotations

from typing import Any

import yaml

from rules.model import Rule


def edit_text(
    text: str, before: list[Rule], after: list[Rule], dump: dict[str, dict[str, Any]]
) -> str | None:
    """`text` (which loads as `before`) changed to hold `after`, or None when the file's layout
    is not one this edits (not a block list of mappings, rules reordered, or none left).

    Args:
        text: The rule file now.
        before: Its rules, in file order.
        after: The same rules, some replaced, some removed, some appended at the end.
        dump: The plain data to write for each rule id that is new or changed.
    """
    items = _items(text)
    now = {r.id: r for r in after}
    kept = [r.id for r in before if r.id in now]
    in_order = [r.id for r in after][: len(kept)] == kept
    if items is None or len(items) != len(before) or not in_order or not after:
        return None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    prefix = _prefix(lines, items[-1])
    appended = [_render(dump[r.id], prefix) for r in after[len(kept):]]
    lines[_last_line(items[-1]) + 1 : _last_line(items[-1]) + 1] = appended
    for node, old in reversed(list(zip(items, before, strict=True))):
        new = now.get(old.id)
        if new is None:  # removed, with the notes on its own lines
            del lines[node.start_mark.line : _last_line(node) + 1]
        elif old.model_dump() != new.model_dump():
            lines[node.start_mark.line : _last_line(node) + 1] = [
                _render(dump[new.id], _prefix(lines, node))
            ]
    return "".join(lines)


def _items(text: str) -> list[yaml.MappingNode] | None:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode) and len(root.value) == 1:
        root = root.value[0][1]
    if not isinstance(root, yaml.SequenceNode) or root.flow_style or not root.value:
        return None
    items = root.value
    if not all(isinstance(n, yaml.MappingNode) and n.value for n in items):
        return None
    return items


def _prefix(lines: list[str], node: yaml.Node) -> str:
    """What precedes the rule on its first line, e.g. ``"  - "``."""
    head = lines[node.start_mark.line][: node.start_mark.column]
    return head if head.strip() in ("-", "") else ""


def _last_line(node: yaml.MappingNode) -> int:
    """The last line holding the rule's content (0-based)."""
    end = node.value[-1][1].end_mark
    return end.line - 1 if end.column == 0 else end.line


class _Dumper(yaml.SafeDumper):
    """Block style, but lists of scalars in flow style (``metric: [pm25]``), as the pack does."""


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flat = not any(isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _list)


def dump_yaml(data: object) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
        width=100,
    )


def _render(data: dict[str, Any], prefix: str) -> str:
    body = dump_yaml(data)
    indent = " " * len(prefix)
    first, *rest = body.splitlines(keepends=True)
    return prefix + first + "".join(indent + line for line in rest)
