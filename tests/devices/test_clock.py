"""`now_ms`: the platform's wall clock in epoch milliseconds."""

from __future__ import annotations

import time

import numpy as np

from devices.clock import ArrivalFrontier, ReadingClock, follow, now_ms


def test_now_ms_is_the_wall_clock_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = now_ms()
    after = time.time_ns() // 1_000_000

    assert isinstance(now, int) and before <= now <= after


def test_a_reading_clock_is_the_wall_clock_until_the_first_reading() -> None:
    before = time.time_ns() // 1_000_000
    assert ReadingClock().now_ms() >= before


def test_following_readings_now_is_their_median_time_and_never_goes_back() -> None:
    clock = ReadingClock(window=5)
    follow(clock)
    try:
        for ts in (1_000, 2_000, 3_000):
            clock.observe(ts)
        assert now_ms() == 2_000
        clock.observe(500)
        clock.observe(400)  # late readings: the median falls, the clock does not
        assert now_ms() == 2_000
        for ts in (4_000, 5_000, 6_000):
            clock.observe(ts)
        assert now_ms() == 4_000
    finally:
        follow(None)
    assert now_ms() > 1_700_000_000_000  # the wall clock again


def test_one_device_with_a_skewed_clock_does_not_move_the_readings_time() -> None:
    clock = ReadingClock(window=9)
    for k in range(20):
        clock.observe(10_000 + 1_000 * k)
        if k % 4 == 0:
            clock.observe(10_000 + 1_000 * k + 3_600_000)  # an hour ahead
    assert clock.now_ms() <= 29_000


def test_a_judged_batch_moves_the_readings_time_to_its_median_whatever_one_device_says() -> None:
    clock = ReadingClock(window=16)
    batch = np.array([5_000 + 100 * k for k in range(40)] + [9_999_999], dtype=np.int64)
    clock.observe_many(batch)
    assert 6_500 <= clock.now_ms() <= 7_500


class Wall:
    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


def arrive(frontier: ArrivalFrontier, ts_by_series: dict[int, list[int]]) -> None:
    slots = [s for s, stamps in ts_by_series.items() for _ in stamps]
    stamps = [t for ts in ts_by_series.values() for t in ts]
    frontier.observe(np.array(slots, dtype=np.int64), np.array(stamps, dtype=np.int64))


def test_the_frontier_sets_no_limit_until_it_knows_the_pace() -> None:
    wall = Wall()
    frontier = ArrivalFrontier(slack_s=2.0, pace_after_s=1.0, wall=wall)
    assert frontier.limit_ms() is None
    arrive(frontier, {s: [10_000] for s in range(10)})
    wall.s = 0.5
    arrive(frontier, {s: [60_000] for s in range(10)})
    assert frontier.limit_ms() is None
    wall.s = 1.0
    arrive(frontier, {s: [110_000] for s in range(10)})
    assert frontier.limit_ms() == 110_000 + 100 * 2_000


def test_a_city_at_100x_is_on_time_and_a_device_an_hour_ahead_is_not() -> None:
    wall, city = Wall(), range(50)
    frontier = ArrivalFrontier(slack_s=2.0, pace_after_s=1.0, wall=wall)
    for step in range(30):  # a batch every half second, 50 simulated seconds each
        wall.s = step * 0.5
        now = 1_000_000 + 50_000 * step
        arrive(frontier, {s: [now - 40_000, now - 20_000, now] for s in city}
               | {99: [now + 3_600_000]})  # one skewed series cannot move it
    wall.s += 0.4
    limit = frontier.limit_ms()
    assert limit is not None
    next_reading = 1_000_000 + 50_000 * 29 + 40_000
    assert next_reading <= limit < next_reading + 3_600_000 - 300_000


def test_a_lone_recording_sets_no_limit_however_it_jumps() -> None:
    wall = Wall()
    frontier = ArrivalFrontier(slack_s=2.0, pace_after_s=1.0, wall=wall)
    for k in range(20):  # 5-minute readings replayed at 600x: one every half second
        wall.s = k * 0.5
        arrive(frontier, {7: [300_000 * k]})
    assert frontier.limit_ms() is None


def test_once_the_city_falls_quiet_its_frontier_sets_no_limit() -> None:
    wall = Wall()
    frontier = ArrivalFrontier(quiet_s=10.0, wall=wall)
    for step in range(5):
        wall.s = step * 0.5
        arrive(frontier, {s: [60_000 * step] for s in range(10)})
    assert frontier.limit_ms() is not None
    wall.s += 10.5
    arrive(frontier, {7: [10 * 3_600_000]})  # a lone replay goes on after the city stopped
    assert frontier.limit_ms() is None


def test_late_batches_do_not_move_the_frontier_back() -> None:
    wall = Wall()
    frontier = ArrivalFrontier(slack_s=0.0, pace_after_s=1.0, company=2, wall=wall)
    arrive(frontier, {1: [1_000], 2: [1_000]})
    wall.s = 1.0
    arrive(frontier, {1: [2_000], 2: [2_000]})
    arrive(frontier, {1: [500], 2: [500]})
    assert frontier.limit_ms() == 2_000
