"""Starting the platform carries the shipped rule pack into the rule file it seeded from an older
pack, and never touches a rule file the operator configured."""

from __future__ import annotations

from pathlib import Path

from rules.language.loader import load_rules, load_rules_file
from rules.language.pack_upgrade import pack_base_path
from rules.language.rulefile import RuleFile, referrers, shipped_pack
from urbanwatch.platform import Platform
from urbanwatch.settings import Settings


async def test_start_adds_a_rule_new_in_the_shipped_pack(settings: Settings) -> None:
    pack = load_rules(shipped_pack())
    new = next(r.id for r in pack if not referrers(pack, r.id))
    copy = settings.state_dir / "rules.yaml"
    copy.write_text(shipped_pack())
    RuleFile(copy).change(lambda rules: [r for r in rules if r.id != new])  # an older pack
    pack_base_path(copy).write_text(copy.read_text())

    async with Platform(settings, serve_api=False):
        pass

    assert [r.id for r in load_rules_file(copy)] == [
        *(r.id for r in pack if r.id != new), new]
    assert pack_base_path(copy).read_text() == shipped_pack()


async def test_start_leaves_a_configured_rule_file_alone(
    settings: Settings, tmp_path: Path
) -> None:
    mine = tmp_path / "mine" / "rules.yaml"
    mine.parent.mkdir()
    text = "# mine\n- id: own\n  category: fire\n  when: value > 1\n"
    mine.write_text(text)
    settings.rules.path = mine

    async with Platform(settings, serve_api=False):
        pass

    assert mine.read_text() == text
    assert list(mine.parent.iterdir()) == [mine]
    assert not (settings.state_dir / "rules.yaml").exists()
