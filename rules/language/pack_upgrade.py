"""Carry a new shipped rule pack into the rule file the platform seeded from an older one.

The seeded copy is the operators' (the API edits it), so a new pack is merged into it three ways, as
a package manager does with a config file: beside the copy, ``<name>.pack-base.yaml`` keeps the text
of the pack it was last seeded or merged from. Per rule id, a change the pack made since that base
is applied when the copy still holds the base's version; when the operator changed (or deleted) the
rule as well, the operator's version stays and the pack's new one can be read in the new base. The
merged set is written like any edit through the API (`rules.language.rulefile.RuleFile`): validated
whole, the comments of the rules it leaves alone kept. Only then does the base become the new pack,
so a merge that could not be written is tried again at the next start.

A merged set that would not be valid is settled rule by rule: a pack rule the operator's
rules leave no room for (it counts a rule they deleted, say) is skipped, and a rule the pack drops
but one of theirs still counts stays. The new base keeps a skipped rule's old version, so the next
start tries it again (and warns again) rather than taking it for one the operator deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from devices.yaml_text import write_atomic
from rules.errors import RuleFileError, RuleRejected
from rules.language import ast
from rules.language.loader import load_rules
from rules.language.model import Rule
from rules.language.rulefile import (
    RuleFile,
    check_set,
    plain,
    referrers,
    render,
    seed_rule_file,
    shipped_pack,
)
from rules.language.ruletext import edit_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Merge:
    """The copy's rules after a merge, and what happened to which rule id.

    `edited` are rules the pack changed that the operator had changed too, `orphaned` rules the
    pack dropped that the operator had changed: in both the operator's version stays. So it does
    in `kept_referenced`, rules the pack dropped that others still count (``count_in``; with their
    ids), and in `skipped`, rules the pack added or changed that the merged set could not hold
    (with the reason).
    """

    rules: list[Rule]
    added: list[str]
    updated: list[str]
    removed: list[str]
    edited: list[str]
    orphaned: list[str]
    kept_referenced: dict[str, list[str]]
    skipped: dict[str, str]


def merge(base: list[Rule], pack: list[Rule], copy: list[Rule]) -> Merge:
    """Merge the changes from `base` to `pack` into `copy`, rule by rule.

    The copy keeps its order; rules new in the pack go at the end, in the pack's order.

    Raises:
        RuleRejected: the merged set is invalid in a way no single rule's change explains.
    """
    old, new, mine = _by_id(base), _by_id(pack), _by_id(copy)
    taken: dict[str, Rule | None] = {}
    edited: list[str] = []
    orphaned: list[str] = []
    for rule_id in dict.fromkeys([*mine, *new, *old]):
        b, p, c = old.get(rule_id), new.get(rule_id), mine.get(rule_id)
        if _equal(p, b) or _equal(c, p):
            continue
        if _equal(c, b):
            taken[rule_id] = p
        elif c is not None:  # one the operator deleted stays deleted
            (edited if p is not None else orphaned).append(rule_id)
    skipped, kept = _settle(copy, taken)
    rules = _apply(copy, taken)
    return Merge(
        rules=rules,
        added=[i for i, r in taken.items() if i not in mine and r is not None],
        updated=[i for i, r in taken.items() if i in mine and r is not None],
        removed=[i for i, r in taken.items() if r is None],
        edited=edited, orphaned=orphaned,
        kept_referenced={i: referrers(rules, i) for i in kept}, skipped=skipped,
    )


def _settle(copy: list[Rule], taken: dict[str, Rule | None]) -> tuple[dict[str, str], list[str]]:
    """Take back the pack's changes (`taken`, per rule id the new rule or None for a removal) that
    make the merged set invalid, one at a time until it is valid (taking one back may expose
    another); what was skipped, each with why, and which removals were taken back.

    The rule the check names is skipped if the pack added or changed it; if it is one the copy
    keeps, the rules it counts that the pack drops (or makes area rules) are kept as they were.
    """
    skipped: dict[str, str] = {}
    kept: list[str] = []
    while True:
        rules = _apply(copy, taken)
        try:
            check_set(rules)
            return skipped, kept
        except RuleRejected as exc:
            culprit = exc.rule_id
            if culprit is not None and taken.get(culprit) is not None:
                del taken[culprit]
                skipped[culprit] = exc.reason
                continue
            counter = next((r for r in rules if r.id == culprit), None)
            lost = [n.rule_id for n in ast.count_ins(counter.nodes())] if counter else []
            undo = [i for i in dict.fromkeys(lost) if i in taken and not _per_series(taken[i])]
            if not undo:
                raise
            for rule_id in undo:
                if taken.pop(rule_id) is None:
                    kept.append(rule_id)
                else:
                    skipped[rule_id] = (f"rule {culprit!r} counts it, and the pack's version is "
                                        "not a per-series rule")


def _apply(copy: list[Rule], taken: dict[str, Rule | None]) -> list[Rule]:
    mine = _by_id(copy)
    kept = [taken.get(r.id, r) for r in copy]
    added = [r for rule_id, r in taken.items() if rule_id not in mine and r is not None]
    return [r for r in kept if r is not None] + added


def _per_series(rule: Rule | None) -> bool:
    return rule is not None and rule.spatial_scope is None


def pack_base_path(path: Path) -> Path:
    """Where the pack that the rule file at `path` follows is kept (``rules.pack-base.yaml``)."""
    return path.with_name(f"{path.stem}.pack-base{path.suffix}")


def follow_pack(path: Path, pack: str | None = None) -> Merge | None:
    """Seed the rule file at `path` from `pack` (by default the shipped one), or merge the pack's
    changes into it; the merge, or None when there was nothing to merge or it failed (logged)."""
    pack = shipped_pack() if pack is None else pack
    base_path = pack_base_path(path)
    if not path.exists():
        seed_rule_file(path, pack)
        write_atomic(base_path, pack)
        return None
    try:
        return _follow(path, base_path, pack)
    except (OSError, UnicodeDecodeError, RuleFileError) as exc:  # a start must not fail on it
        log.error("rule file %s not merged with the new rule pack, it stays as it is: %s",
                  path, exc)
        return None


def _follow(path: Path, base_path: Path, pack: str) -> Merge | None:
    if not base_path.exists():
        # Seeded before bases were kept: which rules differ from the pack by the operator's hand
        # and which by an older pack is unknown, so nothing in the copy is changed.
        write_atomic(base_path, pack)
        log.warning(
            "rule file %s has no record of the pack it was seeded from; the shipped pack, saved "
            "as %s, is its base from now on; compare the two for changes it may lack",
            path, base_path,
        )
        return None
    base = base_path.read_text(encoding="utf-8")
    if base == pack:
        return None
    try:
        base_rules, pack_rules = _load(base, base_path), _load(pack, "the new rule pack")
        done = _merge_into(path, base_rules, pack_rules)
    except RuleRejected as exc:
        why = f"rule {exc.rule_id}: {exc.reason}" if exc.rule_id else exc.reason
        log.error(
            "rule file %s not merged with the new rule pack, it stays as it is: %s; the merge is "
            "tried again at the next start (deleting %s gives it up: the file then stays as it is)",
            path, why, base_path,
        )
        return None
    write_atomic(base_path, _new_base(pack, pack_rules, base_rules, done.skipped))
    _report(path, base_path, done)
    return done


def _merge_into(path: Path, base: list[Rule], pack: list[Rule]) -> Merge:
    done = merge(base, pack, _load(path.read_text(encoding="utf-8"), path))
    # Written only when a rule changes: a new mtime makes the engine reload.
    if done.added or done.updated or done.removed:
        # a rule the pack changed is written as the pack has it now: its old notes are stale
        RuleFile(path).change(lambda copy: merge(base, pack, copy).rules, fresh=done.updated)
    return done


def _new_base(pack_text: str, pack: list[Rule], base: list[Rule], skipped: dict[str, str]) -> str:
    """The new pack as the next merge's base, but with the old base's version of each skipped
    rule (or without it, if new), so that the next merge offers it again."""
    if not skipped:
        return pack_text
    old = _by_id(base)
    rules = [r for r in (old.get(p.id) if p.id in skipped else p for p in pack) if r is not None]
    return edit_text(pack_text, pack, rules, {r.id: plain(r) for r in rules}) or render(rules)


def _load(text: str, source: object) -> list[Rule]:
    try:
        return load_rules(text)
    except RuleFileError as exc:
        raise RuleRejected(f"{source}, {exc}") from None


def _report(path: Path, base_path: Path, done: Merge) -> None:
    changes = [f"{what} {', '.join(ids)}" for what, ids in (
        ("added", done.added), ("updated", done.updated), ("removed", done.removed)) if ids]
    if changes:
        log.info("rule file %s follows the new rule pack: %s", path, "; ".join(changes))
    for rule_id in done.edited:
        log.warning("rule %r: the new rule pack has another version of it; your edited one stays, "
                    "the pack's is in %s", rule_id, base_path)
    for rule_id in done.orphaned:
        log.warning("rule %r: the new rule pack no longer has it, your edited version stays",
                    rule_id)
    for rule_id, counters in done.kept_referenced.items():
        log.warning("rule %r: the new rule pack no longer has it, but it stays since %s counts it",
                    rule_id, ", ".join(repr(c) for c in counters))
    for rule_id, why in done.skipped.items():
        log.warning("rule %r of the new rule pack is not merged, the rule file %s cannot hold it: "
                    "%s; it is offered again at every start (deleting %s gives it up)",
                    rule_id, path, why, base_path)


def _by_id(rules: list[Rule]) -> dict[str, Rule]:
    return {r.id: r for r in rules}


def _equal(a: Rule | None, b: Rule | None) -> bool:
    return (a.model_dump() if a else None) == (b.model_dump() if b else None)
