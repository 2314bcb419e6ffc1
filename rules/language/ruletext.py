"""Edit a rule file's text in place, so its comments (the shipped pack notes the source of every
threshold) survive an edit by the API.

Untouched rules keep their lines. A changed rule is edited field by field with ruamel.yaml's
round trip: only the fields that changed get new values, and the comments on the rule's lines
(such as a threshold's source at the end of its `when:`) stay. A deleted rule's lines go, with
its own notes (`devices.yaml_text`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from devices.yaml_text import (
    append_items,
    block_items,
    cut_lines,
    last_line,
    replace_item,
    text_lines,
)
from rules.language.model import Rule


def edit_text(
    text: str, before: list[Rule], after: list[Rule], dump: dict[str, dict[str, Any]],
    fresh: Collection[str] = (),
) -> str | None:
    """`text` (which loads as `before`) changed to hold `after`, or None when the file's layout
    is not one this edits (not a block list of mappings, rules reordered, or none left).

    Args:
        text: The rule file now.
        before: Its rules, in file order.
        after: The same rules, some replaced, some removed, some appended at the end.
        dump: The plain data to write for each rule id that is new or changed.
        fresh: Ids of changed rules to write anew, comments and all, instead of field by field.
    """
    items = block_items(text)
    now = {r.id: r for r in after}
    kept = [r.id for r in before if r.id in now]
    in_order = [r.id for r in after][: len(kept)] == kept
    if items is None or len(items) != len(before) or not in_order or not after:
        return None
    lines = text_lines(text)
    append_items(lines, items[-1], [dump[r.id] for r in after[len(kept):]])
    floors = [0] + [last_line(lines, n) + 1 for n in items[:-1]]
    for node, old, floor in reversed(list(zip(items, before, floors, strict=True))):
        new = now.get(old.id)
        if new is None:
            del lines[slice(*cut_lines(lines, node, floor))]
        elif old.model_dump() != new.model_dump():
            fields = None if new.id in fresh else (_fields(old), dump[new.id])
            replace_item(lines, node, dump[new.id], fields)
    return "".join(lines)


def _fields(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
