"""Gateway body templates: a JSON-shaped value whose strings may hold ``{{placeholder}}``s.

A template is data (a YAML mapping, list, string, number…), never text to be parsed after
filling in: each placeholder is replaced inside the string that holds it, and the whole value is
then serialised with `json.dumps`. A value with quotes, braces or newlines (an incident title
from a rule, a person's name) therefore stays one JSON string and can never add a key or end
the document. Placeholders are checked when the routing file is loaded (`unknown`), so a typo
is a routing error with its line, not a blank in an SMS.

>>> render({"to": "{{to}}", "text": "{{title}}!"}, {"to": "+8613800000000", "title": 'a"b'})
'{"to":"+8613800000000","text":"a\\\\"b!"}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
FIELDS: dict[str, str] = {
    "to": "the recipient's phone number (E.164) or e-mail address",
    "name": "the recipient's name",
    "member": "the recipient's member id",
    "text": "a short ready-made message (severity, title, area, time, link)",
    "title": "the incident's title",
    "severity": "the colour word: red, orange, yellow, blue or info",
    "level": "the warning level: I (red) … IV (blue); empty for info",
    "category": "the incident's category",
    "area": "the districts (or grid cells) it covers",
    "time": "when it was opened, in the city's time zone",
    "link": "the incident in the dashboard",
    "incident_id": "the incident's id",
    "team": "the team it is dispatched to",
    "step": "the number of the policy step (1, 2, …)",
}
"""Every placeholder a template may use, with what it stands for."""


def _strings(template: Any) -> Iterator[str]:
    if isinstance(template, str):
        yield template
    elif isinstance(template, Mapping):
        for key, value in template.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(template, list | tuple):
        for item in template:
            yield from _strings(item)


def unknown(template: Any) -> list[str]:
    """The placeholders in `template` that `FIELDS` does not know, in order of appearance."""
    found = [m[1] for s in _strings(template) for m in PLACEHOLDER.finditer(s)]
    return [name for name in dict.fromkeys(found) if name not in FIELDS]


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values.get(m[1], ""), template)
    if isinstance(template, Mapping):
        return {_fill(str(k), values): _fill(v, values) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [_fill(item, values) for item in template]
    return template


def render(template: Any, values: Mapping[str, str]) -> str:
    """`template` with its placeholders filled in, as compact JSON (non-ASCII kept as is)."""
    return json.dumps(_fill(template, values), ensure_ascii=False, separators=(",", ":"))
