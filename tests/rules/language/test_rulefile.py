"""The rule file as the API edits it: only changed rules are rewritten, so the comments of the
others (and the notes of a deleted rule, not the shared ones) are kept; and which rules count
another's firing series."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.language.loader import load_rules, load_rules_file
from rules.language.rulefile import (
    HEADER,
    RuleFile,
    build_rule,
    plain,
    referrers,
    seed_rule_file,
    shipped_pack,
)


def test_referrers_include_rules_that_count_in_their_severity() -> None:
    rules = load_rules(
        "- {id: a, category: flood, when: value > 1}\n- {id: b, category: flood, when: value > 2}\n"
        "- {id: c, category: flood, when: 'count_in(grid, rule=a) >= 1',\n"
        "   severity: 'red if count_in(grid, rule=b) >= 1 else yellow'}\n")
    assert [referrers(rules, i) for i in "abc"] == [["c"], ["c"], []]


@pytest.mark.parametrize(("text", "kept", "b_enabled"), [
    ("rules:\n  - id: a\n    category: fire\n    when: value > 1   # first\n"
     "    description: |\n      two\n      lines\n  # about b\n  - id: b\n    category: fire\n"
     "    when: value > 2   # second\n# the end\n",
     ["# about b", "# second", "# the end"], True),
    ("- id: a\n  category: fire\n  when: value > 1\n- id: b\n  category: fire\n"
     "  when: value > 2\n  enabled: false", ["  enabled: false\n- id: c"], False),
    ("# a flow list is written whole\n[{id: a, category: fire, when: value > 1},\n"
     " {id: b, category: fire, when: value > 2}]\n", [HEADER], True),
])
def test_edits_keep_the_comments_of_untouched_rules(
    tmp_path: Path, text: str, kept: list[str], b_enabled: bool
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    extra = build_rule({"id": "c", "category": "flood", "when": "rate(5m) > 0.2"})
    RuleFile(path).change(lambda rules: [
        rules[0].model_copy(update={"enabled": False}), *rules[1:], extra])
    after = load_rules_file(path)
    assert [(r.id, r.enabled) for r in after] == [("a", False), ("b", b_enabled), ("c", True)]
    assert after[0].description == ("two\nlines\n" if "|" in text else "")
    written = path.read_text()
    assert all(line in written for line in kept), written
    assert ("# first" in written) == ("|" in text)  # an edited rule keeps its own notes


@pytest.mark.parametrize("removed", ["a", "b", "c"])
def test_a_deletion_cuts_out_only_the_rules_own_lines(tmp_path: Path, removed: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  # about a\n  - id: a\n    category: fire\n    when: value > 1  # a\n"
                    "  # about b\n  - id: b\n    category: fire\n    when: value > 2  # b\n"
                    "  # about c\n  - id: c\n    category: fire\n    when: value > 3  # c\n"
                    "# the end\n")
    RuleFile(path).change(lambda rules: [r for r in rules if r.id != removed])
    assert [r.id for r in load_rules_file(path)] == [i for i in "abc" if i != removed]
    written = path.read_text()
    assert HEADER not in written  # edited in place, not written afresh
    assert f"# {removed}\n" not in written and f"# about {removed}" not in written
    notes = [f"# about {i}" for i in "abc" if i != removed] + [
        f"# {i}\n" for i in "abc" if i != removed]
    assert all(n in written for n in [*notes, "# the end"]), written


BLOCK_MATCH = (
    "rules:\n  # about a\n  - id: a\n    category: fire\n    when: value > 1\n    match:\n"
    "      device_type: smoke\n      metric: [obscuration_pct_m]\n\n  # about b\n  - id: b\n"
    "    category: fire\n    when: value > 2\n    match:\n      device_type: [smoke]\n"
    "# the end\n")


@pytest.mark.parametrize(("rule_id", "deleted"), [
    ("a", False), ("a", True), ("b", False), ("b", True)])
def test_a_rule_ending_in_a_block_mapping_is_cut_at_its_own_last_line(
    tmp_path: Path, rule_id: str, deleted: bool
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BLOCK_MATCH)
    after = RuleFile(path).change(lambda rules: [
        r.model_copy(update={"enabled": False}) if r.id == rule_id else r
        for r in rules if not (deleted and r.id == rule_id)])
    assert [r.model_dump() for r in load_rules_file(path)] == [r.model_dump() for r in after]
    written = path.read_text()
    assert HEADER not in written, written  # edited in place, not written afresh
    other = "b" if rule_id == "a" else "a"
    assert f"# about {other}" in written and "# the end" in written, written


def test_deleting_a_pack_rule_takes_its_section_notes_with_it(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    seed_rule_file(path)
    RuleFile(path).change(lambda rules: [r for r in rules if r.id != "noise-limit"])
    written = path.read_text()
    assert "# --- Noise" not in written and "judged as zone 2" not in written
    assert "hour() is local time" not in written and "noise-limit" not in written
    assert "else yellow           # IAQI 300 / 200\n\n  # --- Combustible gas" in written
    assert written.count("\n") == shipped_pack().count("\n") - 23  # 5 notes, 17 lines, 1 blank


NOTES = ("# file header\n- id: a\n  category: fire\n  when: value > 1\n\n# --- section x\n\n"
         "# notes of b\n- id: b\n  category: fire\n  when: value > 2\n\n# notes of c and d\n"
         "- id: c\n  category: fire\n  when: value > 3\n- id: d\n  category: fire\n"
         "  when: value > 4\n# trailing\n")


@pytest.mark.parametrize(("removed", "gone"), [
    ("a", []), ("b", ["# notes of b"]), ("c", []), ("d", [])])
def test_a_deleted_rules_own_notes_go_with_it_and_shared_ones_stay(
    tmp_path: Path, removed: str, gone: list[str]
) -> None:
    """Comments right above a rule are its notes, unless another rule follows it directly (then
    they head both) or they open the file; a header set off by a blank line is no rule's."""
    path = tmp_path / "rules.yaml"
    path.write_text(NOTES)
    RuleFile(path).change(lambda rules: [r for r in rules if r.id != removed])
    written = path.read_text()
    assert [r.id for r in load_rules_file(path)] == [i for i in "abcd" if i != removed]
    comments = [line for line in NOTES.splitlines() if line.startswith("#")]
    assert [line for line in written.splitlines() if line.startswith("#")] == [
        c for c in comments if c not in gone]
    assert "\n\n\n" not in written and HEADER not in written


def test_an_edited_pack_rule_keeps_its_threshold_source_notes(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    seed_rule_file(path)
    before = path.read_text().splitlines()

    def edit(rules: list) -> list:
        return [build_rule({**plain(r), "when": "mean(1h) > 80",
                            "match": {"device_type": ["air_quality"], "metric": ["pm25", "pm10"]}})
                if r.id == "aq-pm25" else
                r.model_copy(update={"enabled": False}) if r.id == "noise-limit" else r
                for r in rules]

    RuleFile(path).change(edit)
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert changed[:2] == [
        ("    match: {device_type: air_quality, metric: pm25}",
         "    match: {device_type: [air_quality], metric: [pm25, pm10]}"),
        ("    when: mean(1h) > 75            # IAQI 100 (PM2.5 24-h 75 ug/m3), light pollution "
         "starts",
         "    when: mean(1h) > 80            # IAQI 100 (PM2.5 24-h 75 ug/m3), light pollution "
         "starts"),
    ]
    assert len(after) == len(before) + 1  # `enabled: false` added, everything else in place
    noise = after.index("  - id: noise-limit")
    block = after[noise:noise + 20]
    assert "    enabled: false" in block and "    severity: >-" in block
    assert set(before) - set(after) == {old for old, _ in changed[:2]}
    assert [r.enabled for r in load_rules_file(path) if r.id == "noise-limit"] == [False]
