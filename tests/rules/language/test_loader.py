"""Rule files: valid files load; invalid ones fail naming the line and the reason."""

from __future__ import annotations

import pytest

from rules.detection import Category
from rules.errors import RuleFileError
from rules.language.loader import load_rules

GOOD = """\
rules:
  - id: pm25-heavy
    category: environment
    match: {device_type: air_quality, metric: pm25}
    when: value > 150
    for: 10m
    clear_when: value < 115
    severity: red if value > 250 else orange
"""


def test_loads_mapping_form_with_parsed_fields():
    [rule] = load_rules(GOOD)
    assert (rule.id, rule.category, rule.for_ms) == ("pm25-heavy", Category.ENVIRONMENT, 600_000)
    assert rule.match.device_type == ("air_quality",) and rule.clear_when == "value < 115"


def test_loads_list_form_and_empty_file():
    assert [r.id for r in load_rules("- {id: a, category: flood, when: value > 1}")] == ["a"]
    assert load_rules("") == []


BAD = [
    ("bad-expression", GOOD + "  - id: b\n    category: flood\n    when: value >\n", 11,
     "when: unexpected end of expression at column 8"),
    ("bad-category", "- id: x\n  category: nope\n  when: value > 1\n", 2, "category"),
    ("bad-duration", "- id: x\n  category: flood\n  when: value > 1\n  for: 10q\n", 4,
     "not a duration"),
    ("bad-severity", "- id: x\n  category: flood\n  when: value > 1\n  severity: purple\n", 4,
     "severity: "),
    ("unknown-field", "- id: x\n  category: flood\n  when: value > 1\n  colour: red\n", 4,
     "Extra inputs"),
    ("duplicate-id", "- {id: a, category: flood, when: value > 1}\n"
     "- {id: a, category: flood, when: value > 2}\n", 2, "duplicate rule id"),
    ("unknown-count-rule", "- id: f\n  category: flood\n  when: count_in(grid, rule=zz) >= 3\n",
     3, "refers to 'zz'"),
    ("unknown-count-rule-in-severity", "- {id: a, category: flood, when: value > 1}\n"
     "- id: f\n  category: flood\n  when: count_in(grid, rule=a) >= 1\n"
     "  severity: red if count_in(grid, rule=zz) >= 1 else yellow\n", 5, "refers to 'zz'"),
    ("count-in-mixed", "- {id: a, category: flood, when: value > 1}\n"
     "- {id: f, category: flood, when: 'count_in(grid, rule=a) >= 3 and value > 1'}\n", 2,
     "only combine counts"),
    ("count-in-only-in-severity", "- {id: a, category: flood, when: value > 1}\n"
     "- {id: f, category: flood, when: value > 2,"
     " severity: 'red if count_in(grid, rule=a) >= 1 else yellow'}\n", 2,
     "needs count_in() in when"),
    ("count-in-scopes-differ", "- {id: a, category: flood, when: value > 1}\n"
     "- {id: f, category: flood, when: 'count_in(district, rule=a) >= 1',"
     " severity: 'red if count_in(grid, rule=a) >= 2 else yellow'}\n", 2, "same scope"),
    ("not-a-list", "rules: 3\n", 1, "expected a list"),
    ("bad-yaml", "- id: [1\n", 2, "invalid YAML"),
    ("yaml-off-is-false", "- id: off\n  category: device\n  when: stale(10m)\n", 1,
     "valid string"),
]


@pytest.mark.parametrize(("text", "line", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_rejects_with_line_and_reason(text, line, reason):
    with pytest.raises(RuleFileError) as err:
        load_rules(text)
    assert err.value.line == line
    assert reason in err.value.reason
