"""The leave-one-category-out choice and the figures built from per-file NAB scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.nab_loco import bootstrap, choose, code_key, normalised

RAW = {  # candidate -> file -> raw score
    "a": {"x/1.csv": 1.0, "x/2.csv": 1.0, "y/1.csv": -3.0},
    "b": {"x/1.csv": 0.0, "x/2.csv": 0.0, "y/1.csv": 0.5},
}


def test_a_category_gets_the_candidate_best_on_the_other_categories() -> None:
    assert choose(RAW, "x") == "b"  # judged on y alone, although a wins on x
    assert choose(RAW, "y") == "a"  # judged on x alone


def test_the_shipped_candidate_stays_unless_another_is_clearly_better_elsewhere() -> None:
    files = [f"y/{k}.csv" for k in range(8)]
    shipped = {f: 0.0 for f in files} | {"x/1.csv": 0.0}
    noisy = {f: (1.0 if k % 2 else -0.9) for k, f in enumerate(files)} | {"x/1.csv": -5.0}
    steady = {f: 0.5 for f in files} | {"x/1.csv": -5.0}
    assert choose({"s": shipped, "n": noisy}, "x") == "n"  # the best by its sum (+0.4)
    assert choose({"s": shipped, "n": noisy}, "x", default="s") == "s"  # within its noise
    assert choose({"s": shipped, "t": steady}, "x", default="s") == "t"  # +4, every file


def test_scores_are_normalised_as_nab_does() -> None:
    null, windows = np.array([-1.0, -2.0]), np.array([1.0, 2.0])
    assert normalised(null, null, windows) == 0.0
    assert normalised(windows, null, windows) == 100.0
    assert normalised(np.array([0.0, 0.0]), null, windows) == 50.0


def test_the_bootstrap_spread_is_zero_when_every_file_scores_alike() -> None:
    raw, null, windows = np.zeros(5), -np.ones(5), np.ones(5)
    assert bootstrap(raw, null, windows) == {"std": 0.0, "p05": 50.0, "p95": 50.0}
    spread = bootstrap(np.array([1.0, -1.0, 0.0, 1.0, -1.0]), null, windows)
    assert spread["std"] > 0 and spread["p05"] < 50.0 < spread["p95"]


def test_the_cache_key_of_a_module_ignores_prose_but_not_code(tmp_path: Path) -> None:
    def key(text: str) -> bytes:
        path = tmp_path / "m.py"
        path.write_text(text)
        return code_key(path)

    plain = key('"""Doc."""\ndef f(x):\n    """Twice."""\n    return x + 1\n')
    assert key('"""Other."""\ndef f(x):  # a comment\n    return x + 1\n') == plain
    assert key('"""Doc."""\ndef f(x):\n    """Twice."""\n    return x + 2\n') != plain
