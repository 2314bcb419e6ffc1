"""A new rule pack merged three ways into the rule file seeded from an older one: the pack's
changes arrive where the operator left a rule alone, the operator's edits and deletions win
elsewhere, comments stay, and a pack rule the merged set cannot hold is skipped (or a dropped
one still counted is kept) while the rest is merged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from rules.language.loader import load_rules_file
from rules.language.model import Rule
from rules.language.pack_upgrade import Merge, follow_pack, merge, pack_base_path
from rules.language.rulefile import RuleFile, build_rule

V1 = """\
# pack v1
rules:
  # about a
  - id: a
    category: fire
    when: value > 1   # a's source
  # about b
  - id: b
    category: fire
    when: value > 2
  - id: c
    category: flood
    when: rate(5m) > 0.2
  - id: d
    category: fire
    when: value > 4
"""
# a corrected, b corrected, c unchanged, d dropped, e and f new
V2 = """\
# pack v2
rules:
  # about a
  - id: a
    category: fire
    when: value > 10   # a's new source
  # about b
  - id: b
    category: fire
    when: value > 20
  - id: c
    category: flood
    when: rate(5m) > 0.2
  - id: e
    category: fire
    when: value > 5
  - id: f
    category: fire
    when: value > 6
"""
# an area rule counting c, which an operator may have deleted
V2_AREA = V1 + """\
  - id: c-cluster
    category: flood
    when: count_in(grid, rule=c) >= 3
    severity: red
"""
# V2_AREA with a corrected as well: the correction must arrive whatever becomes of c-cluster
V2_AREA_FIX = V2_AREA.replace("value > 1 ", "value > 10 ")
# V1 with a corrected and c dropped
V2_NO_C = V1.replace("value > 1 ", "value > 10 ").replace(
    "  - id: c\n    category: flood\n    when: rate(5m) > 0.2\n", "")


def r(rule_id: str, threshold: int = 1, **extra: Any) -> Rule:
    return build_rule({"id": rule_id, "category": "fire", "when": f"value > {threshold}", **extra})


def area(rule_id: str, counts: str) -> Rule:
    return build_rule({"id": rule_id, "category": "fire",
                       "when": f"count_in(grid, rule={counts}) >= 3"})


def whens(rules: list[Rule]) -> list[tuple[str, str]]:
    return [(x.id, x.when) for x in rules]


def outcome(done: Merge) -> dict[str, object]:
    lists: dict[str, object] = {
        "added": done.added, "updated": done.updated, "removed": done.removed,
        "edited": done.edited, "orphaned": done.orphaned,
        "kept_referenced": done.kept_referenced, "skipped": {i: "…" for i in done.skipped}}
    return {k: v for k, v in lists.items() if v}


@pytest.mark.parametrize(("base", "pack", "copy", "rules", "report"), [
    ([r("a")], [r("a"), r("n", 9)], [r("a")],
     [r("a"), r("n", 9)], {"added": ["n"]}),
    ([r("a")], [r("a", 2)], [r("a")],
     [r("a", 2)], {"updated": ["a"]}),
    ([r("a")], [r("a", 2)], [r("a", 3)],
     [r("a", 3)], {"edited": ["a"]}),
    ([r("a")], [r("a", 2)], [r("a", enabled=False)],
     [r("a", enabled=False)], {"edited": ["a"]}),
    ([r("a"), r("b")], [r("a")], [r("a"), r("b")],
     [r("a")], {"removed": ["b"]}),
    ([r("a"), r("b")], [r("a")], [r("a"), r("b", 3)],
     [r("a"), r("b", 3)], {"orphaned": ["b"]}),
    ([r("a"), r("b")], [r("a"), r("b", 2)], [r("a")],
     [r("a")], {}),
    ([r("a"), r("b")], [r("a")], [r("a")],
     [r("a")], {}),
    ([r("a")], [r("a", 2)], [r("a", 2)],
     [r("a", 2)], {}),
    ([r("a")], [r("a", 2)], [r("mine", 7), r("a")],
     [r("mine", 7), r("a", 2)], {"updated": ["a"]}),
    ([r("a")], [r("a"), r("mine", 8)], [r("a"), r("mine", 7)],
     [r("a"), r("mine", 7)], {"edited": ["mine"]}),
    ([r("a"), r("b")], [r("z", 9), r("b", 2), r("y", 8), r("a")], [r("b"), r("a")],
     [r("b", 2), r("a"), r("z", 9), r("y", 8)], {"added": ["z", "y"], "updated": ["b"]}),
    ([r("a"), r("c")], [r("a", 2)], [r("a"), r("c"), area("mine", "c")],
     [r("a", 2), r("c"), area("mine", "c")],
     {"updated": ["a"], "kept_referenced": {"c": ["mine"]}}),
    ([r("a"), r("c")], [r("a", 2), r("c"), area("n", "c")], [r("a")],
     [r("a", 2)], {"updated": ["a"], "skipped": {"n": "…"}}),
    ([r("c")], [area("c", "a")], [r("a"), r("c"), area("mine", "c")],
     [r("a"), r("c"), area("mine", "c")], {"skipped": {"c": "…"}}),
    ([r("c"), r("d"), area("x", "d")], [r("c"), area("x", "c")], [r("d"), area("x", "d")],
     [r("d"), area("x", "d")], {"skipped": {"x": "…"}, "kept_referenced": {"d": ["x"]}}),
], ids=[
    "new-in-pack-added", "changed-in-pack-updated", "edited-by-operator-kept",
    "disabled-by-operator-kept", "dropped-by-pack-removed", "dropped-but-edited-kept",
    "deleted-by-operator-stays-deleted", "deleted-by-both", "same-change-on-both-sides",
    "operators-own-rule-untouched", "operators-rule-with-a-new-pack-id-kept",
    "copy-order-kept-new-rules-last-in-pack-order", "dropped-but-counted-kept",
    "new-rule-counting-a-deleted-one-skipped", "made-an-area-rule-but-counted-skipped",
    "skipping-one-keeps-another",
])
def test_merge(
    base: list[Rule], pack: list[Rule], copy: list[Rule], rules: list[Rule],
    report: dict[str, object],
) -> None:
    done = merge(base, pack, copy)
    assert whens(done.rules) == whens(rules)
    assert [x.enabled for x in done.rules] == [x.enabled for x in rules]
    assert outcome(done) == report


def test_the_first_start_seeds_the_copy_and_its_base(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    assert follow_pack(path, V1) is None
    assert path.read_text() == V1
    assert pack_base_path(path) == tmp_path / "rules.pack-base.yaml"
    assert pack_base_path(path).read_text() == V1


def test_a_new_pack_is_merged_keeping_the_operators_edits_and_comments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: [  # b edited, c deleted, an own rule added
        rules[0], rules[1].model_copy(update={"enabled": False}), rules[3], r("mine", 7)])
    path.write_text(path.read_text() + "  # my own note\n")
    caplog.set_level(logging.INFO, logger="rules.language.pack_upgrade")

    done = follow_pack(path, V2)

    assert done is not None and outcome(done) == {
        "added": ["e", "f"], "updated": ["a"], "removed": ["d"], "edited": ["b"]}
    assert [(x.id, x.when, x.enabled) for x in load_rules_file(path)] == [
        ("a", "value > 10", True), ("b", "value > 2", False), ("mine", "value > 7", True),
        ("e", "value > 5", True), ("f", "value > 6", True)]
    written = path.read_text()
    assert all(note in written for note in ["# pack v1", "# about a", "# about b",
                                            "# my own note"]), written
    assert "# a's source" not in written  # the updated rule is rewritten, its old note goes
    assert pack_base_path(path).read_text() == V2  # where the pack's version of b can be read
    [warning] = [x.getMessage() for x in caplog.records if x.levelno == logging.WARNING]
    assert "'b'" in warning and str(pack_base_path(path)) in warning
    infos = " ".join(x.getMessage() for x in caplog.records if x.levelno == logging.INFO)
    assert all(f"{what} {ids}" in infos for what, ids in [
        ("added", "e, f"), ("updated", "a"), ("removed", "d")]), infos


def test_an_unchanged_pack_leaves_the_copy_untouched(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: rules[1:])
    before = path.read_text(), path.stat().st_mtime_ns
    assert follow_pack(path, V1) is None
    assert (path.read_text(), path.stat().st_mtime_ns) == before


def test_a_pack_change_the_operator_overrode_everywhere_does_not_rewrite_the_copy(
    tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: [x for x in rules if x.id in ("c", "d")])
    before = path.read_text(), path.stat().st_mtime_ns
    pack = V1.replace("value > 1 ", "value > 11 ")
    done = follow_pack(path, pack)
    assert done is not None and outcome(done) == {}
    assert (path.read_text(), path.stat().st_mtime_ns) == before  # the engine is not reloaded
    assert pack_base_path(path).read_text() == pack


def test_a_new_rule_counting_one_the_operator_deleted_is_skipped_the_rest_merged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: [x for x in rules if x.id != "c"])

    done = follow_pack(path, V2_AREA_FIX)

    assert done is not None and outcome(done) == {"updated": ["a"], "skipped": {"c-cluster": "…"}}
    assert [(x.id, x.when) for x in load_rules_file(path)] == [
        ("a", "value > 10"), ("b", "value > 2"), ("d", "value > 4")]
    [warning] = [x.getMessage() for x in caplog.records if x.levelno == logging.WARNING]
    assert "'c-cluster'" in warning and "count_in() refers to 'c'" in warning, warning
    assert not [x for x in caplog.records if x.levelno == logging.ERROR]
    # the base moves on but for c-cluster, so it is offered again rather than taken as deleted
    base = pack_base_path(path).read_text()
    assert "value > 10 " in base and "c-cluster" not in base
    caplog.clear()
    before = path.read_text()
    done = follow_pack(path, V2_AREA_FIX)
    assert done is not None and outcome(done) == {"skipped": {"c-cluster": "…"}}
    assert path.read_text() == before
    assert any("'c-cluster'" in x.getMessage() for x in caplog.records)
    RuleFile(path).change(lambda rules: [*rules, build_rule(
        {"id": "c", "category": "flood", "when": "value > 3"})])  # the operator brings c back
    done = follow_pack(path, V2_AREA_FIX)
    assert done is not None and outcome(done) == {"added": ["c-cluster"]}
    assert pack_base_path(path).read_text() == V2_AREA_FIX


def test_a_dropped_rule_the_operators_rule_counts_is_kept_the_rest_merged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: [*rules, area("my-cluster", "c")])

    done = follow_pack(path, V2_NO_C)

    assert done is not None and outcome(done) == {
        "updated": ["a"], "kept_referenced": {"c": ["my-cluster"]}}
    assert [(x.id, x.when) for x in load_rules_file(path)] == [
        ("a", "value > 10"), ("b", "value > 2"), ("c", "rate(5m) > 0.2"), ("d", "value > 4"),
        ("my-cluster", "count_in(grid, rule=c) >= 3")]
    assert pack_base_path(path).read_text() == V2_NO_C  # c is the operator's from now on
    [warning] = [x.getMessage() for x in caplog.records if x.levelno == logging.WARNING]
    assert "'c'" in warning and "'my-cluster' counts it" in warning, warning
    assert not [x for x in caplog.records if x.levelno == logging.ERROR]


def test_an_invalid_base_changes_nothing_and_names_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    pack_base_path(path).write_text("rules: [{id: a}]\n")
    assert follow_pack(path, V2) is None
    assert path.read_text() == V1
    [error] = [x.getMessage() for x in caplog.records if x.levelno == logging.ERROR]
    assert str(pack_base_path(path)) in error and "category" in error, error


def test_a_copy_seeded_before_bases_were_kept_is_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(V1.replace("value > 2", "value > 3"))  # b edited, or the old pack's b?
    before = path.read_text()

    assert follow_pack(path, V2) is None

    assert path.read_text() == before
    assert pack_base_path(path).read_text() == V2
    [warning] = [x.getMessage() for x in caplog.records if x.levelno == logging.WARNING]
    assert str(pack_base_path(path)) in warning
    caplog.clear()
    assert follow_pack(path, V2) is None  # said once
    assert path.read_text() == before
    assert not caplog.records


def test_a_merge_interrupted_before_the_base_was_saved_is_done_again_the_same(
    tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    RuleFile(path).change(lambda rules: [x for x in rules if x.id != "c"])
    follow_pack(path, V2)
    merged = path.read_text()
    pack_base_path(path).write_text(V1)  # as if the start stopped between the two writes
    done = follow_pack(path, V2)
    assert done is not None and outcome(done) == {}
    assert path.read_text() == merged


@pytest.mark.parametrize("spoil", ["not utf-8", "a folder"])
def test_an_unreadable_base_never_stops_a_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, spoil: str
) -> None:
    path = tmp_path / "rules.yaml"
    follow_pack(path, V1)
    base = pack_base_path(path)
    if spoil == "not utf-8":
        base.write_bytes(b"\xff\xfe- id: a\n")
    else:
        base.unlink()
        base.mkdir()
    before = path.read_text()

    assert follow_pack(path, V2_AREA) is None

    assert path.read_text() == before
    [error] = [x.getMessage() for x in caplog.records if x.levelno == logging.ERROR]
    assert "not merged with the new rule pack, it stays as it is" in error
