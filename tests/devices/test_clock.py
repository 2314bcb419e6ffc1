"""`now_ms`: the platform's wall clock in epoch milliseconds."""

from __future__ import annotations

import time

import numpy as np

from devices.clock import ReadingClock, follow, now_ms


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
