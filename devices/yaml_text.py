"""Edit YAML files people keep (rule packs, routing files) in place, so their comments and layout
survive an edit by the API or the CLI.

A file is a block list of mappings (the items: rules, teams...). Untouched items keep their
lines; a changed item is edited field by field with ruamel.yaml's round trip, so only the fields
that changed get new values and the comments on its lines stay; a deleted item's lines go, with
its own notes. Callers check that the edited text still loads as intended, and write it with
`write_atomic` under `file_lock`. The text has passed `devices.plain_yaml` (no aliases, bounded
size) before it gets here: ruamel.yaml only ever reads what the safe loader accepted.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from devices import plain_yaml

WIDTH = 100
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def edited_mapping(
    lines: list[str], column: int, old: dict[str, Any], new: dict[str, Any]
) -> str | None:
    """The item in `lines` (its mapping starting at `column` of the first line) with only the
    fields whose value changed from `old` to `new` rewritten, comments kept; None if its text is
    not a plain block mapping."""
    head, first = lines[0][:column], lines[0][column:]
    indent = " " * column
    if any(line.strip() and not line.startswith(indent) for line in lines[1:]):
        return None
    body = first + "".join(line[column:] for line in lines[1:])
    rt = _round_trip(WIDTH - column)
    item = rt.load(body)
    if not isinstance(item, CommentedMap) or item.fa.flow_style():
        return None
    for key in [k for k in item if k not in new]:
        del item[key]
    for key, value in new.items():
        if key not in item or old.get(key) != value:
            item[key] = _styled(value, item.get(key))
    out = io.StringIO()
    rt.dump(item, out)
    # ruamel leaves a space where it folds a long plain scalar (the caller checks that the text
    # still loads as intended, so a block scalar's own trailing spaces cannot be lost silently)
    text_lines = [line.rstrip() + "\n" for line in out.getvalue().splitlines()]
    while text_lines and not text_lines[-1].strip():
        text_lines.pop()
    return head + text_lines[0] + "".join(
        indent + line if line.strip() else line for line in text_lines[1:])


def _round_trip(width: int) -> YAML:
    rt = YAML()  # round trip: comments, key order, quotes and flow styles are kept
    rt.preserve_quotes = True
    rt.width = width
    rt.indent(mapping=2, sequence=2, offset=0)
    return rt


def _styled(value: Any, was: Any) -> Any:
    """`value` in the style the pack writes: lists of scalars and mappings that were flow style
    (``match: {device_type: x, metric: y}``) stay so."""
    if isinstance(value, dict):
        out = CommentedMap((k, _styled(v, None)) for k, v in value.items())
        if was is None or (isinstance(was, CommentedMap) and was.fa.flow_style()):
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_styled(v, None) for v in value)
        if not any(isinstance(v, dict | list) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def block_items(text: str) -> list[yaml.MappingNode] | None:
    root = plain_yaml.compose(text)
    if isinstance(root, yaml.MappingNode) and len(root.value) == 1:
        root = root.value[0][1]
    if not isinstance(root, yaml.SequenceNode) or root.flow_style or not root.value:
        return None
    items = root.value
    if not all(isinstance(n, yaml.MappingNode) and n.value for n in items):
        return None
    return items


def text_lines(text: str) -> list[str]:
    """`text` as lines, the last one too ending in a newline, so items can be added after it."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def append_items(lines: list[str], last: yaml.Node, items: list[dict[str, Any]]) -> None:
    """Write `items` after the item `last`, each behind the same prefix (``"  - "``)."""
    end = last_line(lines, last) + 1
    lines[end:end] = [render_item(item, item_prefix(lines, last)) for item in items]


def replace_item(
    lines: list[str], node: yaml.Node, item: dict[str, Any],
    fields: tuple[dict[str, Any], dict[str, Any]] | None,
) -> None:
    """Put `item` in place of the item `node`.

    Given `fields` (the item's fields before and after, as plain data), only those that changed
    are rewritten and the comments on its lines stay; without them, or where its text is not a
    plain block mapping, the item is written anew.
    """
    first, last = node.start_mark.line, last_line(lines, node)
    edited = None if fields is None else edited_mapping(
        lines[first : last + 1], node.start_mark.column, *fields)
    lines[first : last + 1] = [edited or render_item(item, item_prefix(lines, node))]


def item_prefix(lines: list[str], node: yaml.Node) -> str:
    """What precedes the item on its first line, e.g. ``"  - "``."""
    head = lines[node.start_mark.line][: node.start_mark.column]
    return head if head.strip() in ("-", "") else ""


def last_line(lines: list[str], node: yaml.Node) -> int:
    """The last line holding the item's content (0-based).

    A block collection ends where the next token starts (the next item's ``- id:``, or the end of
    the file past any comments), so the end is that of its deepest last value instead; a block
    scalar (``|``) ends past the blank lines after it, so those are stepped back over.
    """
    while isinstance(node, yaml.CollectionNode) and not node.flow_style:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    end = node.end_mark
    line = end.line - 1 if end.column == 0 else end.line
    while not lines[line].strip():
        line -= 1
    return line


def cut_lines(lines: list[str], node: yaml.Node, floor: int) -> tuple[int, int]:
    """The lines ``[start, end)`` a deleted item takes with it.

    Its notes (the comment lines right above it, not above `floor`, the previous item's end) go
    too when the item stands alone: an item followed directly by another one heads a section whose
    notes are about both, and a comment block that opens the file is the file's header. A blank
    line the cut would leave doubled goes as well.
    """
    start, end = node.start_mark.line, last_line(lines, node) + 1
    if end == len(lines) or _is_blank_or_comment(lines[end]):
        notes = start
        while notes > floor and lines[notes - 1].lstrip().startswith("#"):
            notes -= 1
        start = notes if notes > 0 else start
    if start > 0 and not lines[start - 1].strip():
        if end == len(lines):
            start -= 1
        elif not lines[end].strip():
            end += 1
    return start, end


def _is_blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


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


def render_item(data: dict[str, Any], prefix: str) -> str:
    body = dump_yaml(data)
    indent = " " * len(prefix)
    first, *rest = body.splitlines(keepends=True)
    return prefix + first + "".join(indent + line for line in rest)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, then move it over `path`.

    The new file's mtime is made later than the old one's even within one tick of the file
    system's clock, since a changed file (rules, routing) is noticed by its mtime.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, old.st_mode & 0o777 if old else 0o644)
        if old and os.stat(tmp).st_mtime_ns <= old.st_mtime_ns:
            os.utime(tmp, ns=(old.st_mtime_ns + 1, old.st_mtime_ns + 1))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_lock(path: Path) -> threading.Lock:
    """One lock per file in this process: an edit reads, checks and writes under it."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())
