"""Which districts a worker owns: a stable hash for `--partition k/N`, a list for `--districts`;
and the `serve` options refusing what cannot work, saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from devices.catalogue import load_catalogue
from devices.errors import InvalidNameError
from devices.registry import Device, DeviceStatus, Registry
from urbanwatch.partition import Partition, held_changes
from urbanwatch.services.ports import free_port

DISTRICTS = [f"D{n:02d}" for n in range(1, 41)] + ["haidian", "chaoyang", "dongcheng"]
URBANWATCH = str(Path(sys.executable).with_name("urbanwatch"))


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_every_district_belongs_to_exactly_one_of_n_partitions(n: int) -> None:
    partitions = [Partition.parse(f"{k}/{n}") for k in range(1, n + 1)]
    for district in DISTRICTS:
        assert sum(p.owns(district) for p in partitions) == 1


def test_the_hash_is_stable_across_processes_and_python_versions() -> None:
    """CRC-32 of the id, not the salted `hash()`: another process agrees (fixed values)."""
    assert [Partition.parse(f"{k}/2").owns("D01") for k in (1, 2)] == [False, True]
    assert zlib.crc32(b"D04") % 2 == 0 and Partition.parse("1/2").owns("D04")
    child = subprocess.run(
        [sys.executable, "-c", "from urbanwatch.partition import Partition as P; "
         "print(P.parse('2/3').own_districts(['D01','D02','D03','D04','D05','D06']))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "7"})
    assert child.stdout.strip() == str(Partition.parse("2/3").own_districts(
        ["D01", "D02", "D03", "D04", "D05", "D06"]))


def test_a_partition_spreads_a_city_roughly_evenly() -> None:
    owned = [len(Partition.parse(f"{k}/4").own_districts(DISTRICTS)) for k in range(1, 5)]
    assert sum(owned) == len(DISTRICTS) and min(owned) >= 5


def test_listed_districts_own_their_devices_and_nothing_else() -> None:
    p = Partition.listed("D01, D03")
    devices = [Device(f"d{n}", "gas", f"D0{n}", 39.9, 116.4) for n in (1, 2, 3)]
    assert [d.id for d in p.own_devices(devices)] == ["d1", "d3"]
    assert p.own_districts(["D02", "D03"]) == ("D01", "D03")  # listed ones, known or not
    assert p.name == Partition.listed("D03,D01").name != Partition.listed("D01").name


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", ""],
                         ids=["zero", "past-n", "no-slash", "letters", "no-partitions",
                              "negative", "empty"])
def test_a_bad_partition_says_what_a_good_one_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match="expected k/N with 1 <= k <= N"):
        Partition.parse(text)


@pytest.mark.parametrize("text", ["D01,city/#", "D01,+", "D 1", ",", ""],
                         ids=["topic-wildcard", "plus", "space", "only-comma", "empty"])
def test_district_lists_go_through_the_one_name_grammar(text: str) -> None:
    with pytest.raises(ValueError):  # InvalidNameError is one
        Partition.listed(text)
    if text.strip(", "):
        with pytest.raises(InvalidNameError):
            Partition.listed(text)


def run_serve(*args: str, tmp_path: Path) -> tuple[int, str]:
    """`urbanwatch serve` on ports of its own (the defaults may be taken by a running demo)."""
    ports = {f"URBANWATCH_{name}__PORT": str(free_port()) for name in ("API", "MQTT", "INFLUX")}
    result = subprocess.run([URBANWATCH, "serve", "--state-dir", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, **ports})
    return result.returncode, " ".join(result.stderr.split())


@pytest.mark.parametrize(("args", "said"), [
    (["--partition", "3/2"], "expected k/N with 1 <= k <= N"),
    (["--districts", "D01,city/#"], "bad district id 'city/#'"),
    (["--partition", "1/2", "--districts", "D01"], "give --partition or --districts, not both"),
], ids=["partition-range", "district-name", "both"])
def test_serve_refuses_bad_partition_options_as_usage_errors(
    args: list[str], said: str, tmp_path: Path,
) -> None:
    code, stderr = run_serve(*args, tmp_path=tmp_path)
    assert code == 2 and said in stderr
    assert not (tmp_path / "services").exists()


def test_a_partitioned_worker_needs_the_shared_postgresql(tmp_path: Path) -> None:
    code, stderr = run_serve("--partition", "1/2", tmp_path=tmp_path)
    assert code == 1 and "share one PostgreSQL database: give --db-url" in stderr
    assert not (tmp_path / "services").exists()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_partition_owning_no_stored_district_says_to_import_the_city_first(
    db_url: str, tmp_path: Path,
) -> None:
    code, stderr = run_serve("--partition", "1/2", "--db-url", db_url, tmp_path=tmp_path)
    assert code == 1 and "owns none of the 0 districts stored: import the city first" in stderr
    assert not (tmp_path / "services").exists()


def test_a_worker_takes_its_districts_changes_and_lets_go_of_a_device_moved_away() -> None:
    held = Registry.build(load_catalogue(), [Device("aq-1", "air_quality", "d1", 0.0, 0.0),
                                             Device("aq-2", "air_quality", "d1", 0.0, 0.0)])
    changed = [Device("aq-1", "air_quality", "d2", 0.0, 0.0),  # moved to another worker's
               Device("aq-3", "air_quality", "d1", 0.0, 0.0),  # new here
               Device("aq-4", "air_quality", "d2", 0.0, 0.0)]  # new there: not ours
    taken = {d.id: d for d in held_changes(held, ["d1"], changed)}
    assert set(taken) == {"aq-1", "aq-3"}
    assert taken["aq-1"].status is DeviceStatus.RETIRED  # no longer judged here
    assert taken["aq-3"].status is DeviceStatus.ACTIVE
