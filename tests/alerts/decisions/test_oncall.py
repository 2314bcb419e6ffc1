"""Who is on duty: weekly rotations handing over in the city's local time, and overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.decisions.oncall import duty, on_duty
from alerts.schedules import Override, Rotation, Schedule, Weekday

SHANGHAI, BERLIN = "Asia/Shanghai", "Europe/Berlin"
WEEK_MS = 7 * 24 * 3600_000
TRIO = ("li", "wang", "zhao")


def ms(tz: str, *local: int) -> int:
    """Epoch ms of a local wall-clock time in `tz`."""
    return int(datetime(*local, tzinfo=ZoneInfo(tz)).timestamp() * 1000)  # type: ignore[misc]


def weekly(start: date = date(2026, 1, 5), **kwargs) -> Schedule:
    return Schedule(id="lead", rotation=Rotation(members=TRIO, start=start, **kwargs))


@pytest.mark.parametrize(("local", "member"), [
    ((2026, 1, 5, 8, 59), "zhao"),  # before the first handoff: the rotation runs backwards
    ((2026, 1, 5, 9, 0), "li"),
    ((2026, 1, 12, 8, 59), "li"),
    ((2026, 1, 12, 9, 0), "wang"),
    ((2026, 1, 19, 9, 0), "zhao"),
    ((2026, 1, 26, 9, 0), "li"),
], ids=["before-start", "first-turn", "last-minute", "second-turn", "third", "wraps-around"])
def test_weekly_turns_hand_over_on_monday_at_nine_in_shanghai(local, member):
    assert on_duty(weekly(), ms(SHANGHAI, *local), SHANGHAI) == member


def test_the_first_turn_begins_on_the_first_handoff_day_from_the_start():
    schedule = weekly(start=date(2026, 1, 7), handoff_day=Weekday.friday,  # a Wednesday
                      handoff_time=time(18, 0), length_weeks=2)
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 9, 17, 59), SHANGHAI) == "zhao"
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 9, 18, 0), SHANGHAI) == "li"
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 22, 12, 0), SHANGHAI) == "li"  # 2 weeks
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 23, 18, 0), SHANGHAI) == "wang"


def test_handoffs_stay_at_local_nine_across_daylight_saving_time():
    # Berlin moves to summer time on Sunday 2026-03-29: Monday 09:00 is 07:00 UTC, not 08:00
    schedule = weekly()
    before = on_duty(schedule, ms(BERLIN, 2026, 3, 23, 12, 0), BERLIN)
    assert on_duty(schedule, ms(BERLIN, 2026, 3, 30, 8, 59), BERLIN) == before
    after = on_duty(schedule, ms(BERLIN, 2026, 3, 30, 9, 0), BERLIN)
    assert after != before and ms(BERLIN, 2026, 3, 30, 9, 0) % (24 * 3600_000) == 7 * 3600_000
    # and back to winter time on 2026-10-25: Monday 09:00 is 08:00 UTC again
    back = on_duty(schedule, ms(BERLIN, 2026, 10, 26, 8, 59), BERLIN)
    assert on_duty(schedule, ms(BERLIN, 2026, 10, 26, 9, 0), BERLIN) != back


def test_the_same_moment_has_other_people_on_duty_in_other_zones():
    moment = ms(SHANGHAI, 2026, 1, 12, 10, 0)  # Monday 10:00 in Shanghai, 03:00 in Berlin
    assert on_duty(weekly(), moment, SHANGHAI) == "wang"
    assert on_duty(weekly(), moment, BERLIN) == "li"


def test_overrides_cover_their_span_and_the_last_listed_wins():
    local = Override(member="zhao", start=datetime(2026, 1, 6, 18), end=datetime(2026, 1, 7, 9))
    offset = Override(member="wang", start=datetime(2026, 1, 6, 20, tzinfo=UTC),
                      end=datetime(2026, 1, 6, 21, tzinfo=UTC))  # 04:00-05:00 in Shanghai
    schedule = Schedule(id="lead", rotation=weekly().rotation, overrides=(local, offset))
    assert duty(schedule, ms(SHANGHAI, 2026, 1, 6, 17, 59), SHANGHAI).member_id == "li"
    assert duty(schedule, ms(SHANGHAI, 2026, 1, 6, 18, 0), SHANGHAI).override
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 6, 18, 0), SHANGHAI) == "zhao"
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 7, 4, 30), SHANGHAI) == "wang"
    assert on_duty(schedule, ms(SHANGHAI, 2026, 1, 7, 8, 59), SHANGHAI) == "zhao"
    assert duty(schedule, ms(SHANGHAI, 2026, 1, 7, 9, 0), SHANGHAI) == duty(weekly(), ms(
        SHANGHAI, 2026, 1, 7, 9, 0), SHANGHAI)  # the end is exclusive


def test_an_override_ending_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="is not after start"):
        Override(member="li", start=datetime(2026, 1, 2), end=datetime(2026, 1, 1))


@given(
    members=st.integers(1, 5),
    length_weeks=st.integers(1, 4),
    day=st.sampled_from(list(Weekday)),
    minute=st.integers(0, 24 * 60 - 1),
    start=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    now_ms=st.integers(ms(SHANGHAI, 2015, 1, 1, 0, 0), ms(SHANGHAI, 2035, 1, 1, 0, 0)),
)
def test_in_a_zone_without_dst_turns_are_fixed_spans_of_utc_time(
    members, length_weeks, day, minute, start, now_ms
):
    """In Shanghai (UTC+8 all year) a turn is exactly `length_weeks` of elapsed time, so the
    member on duty is plain arithmetic on epoch milliseconds from the first handoff."""
    ids = tuple(f"m{n}" for n in range(members))
    rotation = Rotation(members=ids, handoff_day=day, handoff_time=time(*divmod(minute, 60)),
                        length_weeks=length_weeks, start=start)
    first = start + timedelta(days=(day - start.weekday()) % 7)
    first_ms = ms(SHANGHAI, first.year, first.month, first.day, *divmod(minute, 60))
    expected = ids[((now_ms - first_ms) // (length_weeks * WEEK_MS)) % members]
    assert on_duty(Schedule(id="s", rotation=rotation), now_ms, SHANGHAI) == expected
