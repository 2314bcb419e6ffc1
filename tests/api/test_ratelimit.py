"""Login throttling as pure logic: sliding windows and delays over an explicit clock."""

from __future__ import annotations

import pytest

from api.security.ratelimit import LoginThrottle, SlidingWindow

# (failure times, the time asked, expected wait) for at most 3 failures in 10 s
WINDOW_CASES = [
    ([], 0.0, 0.0),
    ([0.0, 1.0], 2.0, 0.0),  # two of three used
    ([0.0, 1.0, 2.0], 2.0, 8.0),  # full: wait until the oldest leaves the window
    ([0.0, 1.0, 2.0], 9.5, 0.5),
    ([0.0, 1.0, 2.0], 10.0, 0.0),  # the oldest has left: one may try again
    ([0.0, 1.0, 2.0, 3.0], 10.0, 1.0),  # four failures: the three newest count
    ([0.0, 1.0, 2.0], 30.0, 0.0),  # all long gone
    ([5.0, 5.0, 5.0], 5.0, 10.0),  # simultaneous failures
]


@pytest.mark.parametrize(("failures", "now", "wait"), WINDOW_CASES)
def test_sliding_window(failures: list[float], now: float, wait: float) -> None:
    window = SlidingWindow(limit=3, window_s=10.0)
    for t in failures:
        window.fail("k", t)
    assert window.retry_after("k", now) == pytest.approx(wait)
    assert window.retry_after("other", now) == 0.0  # keys are independent


def test_clear_forgets_a_key() -> None:
    window = SlidingWindow(limit=1, window_s=60.0)
    window.fail("k", 0.0)
    assert window.retry_after("k", 1.0) == pytest.approx(59.0)
    window.clear("k")
    assert window.retry_after("k", 1.0) == 0.0


def test_stale_keys_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.security.ratelimit.SWEEP_AT", 3)
    window = SlidingWindow(limit=5, window_s=10.0)
    for i, key in enumerate(["a", "b", "c"]):
        window.fail(key, float(i))
    window.fail("d", 100.0)  # a, b, c are outside the window by now
    assert set(window._failures) == {"d"}


def test_take_back_forgets_one_failure() -> None:
    window = SlidingWindow(limit=2, window_s=60.0)
    window.fail("k", 1.0)
    window.fail("k", 2.0)
    window.take_back("k", 2.0)
    assert window.count("k", 3.0) == 1 and window.retry_after("k", 3.0) == 0.0
    window.take_back("k", 1.0)
    assert "k" not in window._failures


def _fail(throttle: LoginThrottle, user: str, address: str, now: float) -> None:
    assert throttle.admit(user, address, now) == 0
    throttle.failed(user, now)


# (failures as (user, address, time), asked (user, address, time), expected whole seconds)
THROTTLE_CASES = [
    ("4 failures of one user from one address: still allowed",
     [("ann", "1.1.1.1", float(t)) for t in range(4)], ("ann", "1.1.1.1", 4.0), 0),
    ("5 lock that user at that address for the rest of 5 minutes",
     [("ann", "1.1.1.1", float(t)) for t in range(5)], ("ann", "1.1.1.1", 5.0), 295),
    ("... whatever the case of the name",
     [("Ann", "1.1.1.1", float(t)) for t in range(5)], ("aNN", "1.1.1.1", 5.0), 295),
    ("... but not that user from another address",
     [("ann", "1.1.1.1", float(t)) for t in range(5)], ("ann", "9.9.9.9", 5.0), 0),
    ("... nor another user from that address",
     [("ann", "1.1.1.1", float(t)) for t in range(5)], ("bob", "1.1.1.1", 5.0), 0),
    ("20 failures from one address over many names lock the address",
     [(f"u{t}", "1.1.1.1", float(t)) for t in range(20)], ("bob", "1.1.1.1", 20.0), 280),
    ("19 from one address do not",
     [(f"u{t}", "1.1.1.1", float(t)) for t in range(19)], ("bob", "1.1.1.1", 20.0), 0),
    ("fractions round up",
     [("ann", "1.1.1.1", 0.5 + t) for t in range(5)], ("ann", "1.1.1.1", 300.0), 1),
    ("after the window everything is forgotten",
     [("ann", "1.1.1.1", float(t)) for t in range(5)], ("ann", "1.1.1.1", 305.0), 0),
]


@pytest.mark.parametrize(("failures", "asked", "wait"), [c[1:] for c in THROTTLE_CASES],
                         ids=[c[0] for c in THROTTLE_CASES])
def test_login_throttle(
    failures: list[tuple[str, str, float]], asked: tuple[str, str, float], wait: int
) -> None:
    throttle = LoginThrottle()
    for user, address, t in failures:
        _fail(throttle, user, address, t)
    assert throttle.admit(*asked) == wait


def test_admitting_counts_the_attempt_before_its_answer() -> None:
    """Attempts admitted one after another, none answered yet, stop at the limit."""
    throttle = LoginThrottle(per_user_address=SlidingWindow(3, 60.0))
    assert [throttle.admit("ann", "1.1.1.1", 0.0) for _ in range(5)] == [0, 0, 0, 60, 60]


def test_the_delay_doubles_per_failure_of_the_user_from_any_address_up_to_the_cap() -> None:
    throttle = LoginThrottle(delay_base_s=0.5, delay_cap_s=3.0)
    delays = [throttle.failed("ann", float(t)) for t in range(5)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert throttle.failed("bob", 5.0) == 0.5  # another user's delay is their own
    throttle.succeeded("ann", "2.2.2.2", 6.0)
    assert throttle.failed("ann", 7.0) == 0.5
    assert throttle.failed("ann", 400.0) == 0.5  # the earlier failure has left the window


def test_success_clears_the_user_not_the_address() -> None:
    throttle = LoginThrottle(per_user_address=SlidingWindow(2, 60.0),
                             per_address=SlidingWindow(3, 60.0))
    _fail(throttle, "ann", "1.1.1.1", 0.0)
    _fail(throttle, "ann", "1.1.1.1", 1.0)
    assert throttle.admit("ann", "1.1.1.1", 2.0) == 58  # 0 + 60 - 2
    assert throttle.admit("ann", "2.2.2.2", 2.0) == 0
    throttle.succeeded("ann", "2.2.2.2", 2.0)  # not counted against 2.2.2.2
    assert throttle.per_address.count("2.2.2.2", 2.0) == 0
    _fail(throttle, "bob", "1.1.1.1", 2.0)  # the address's third failure
    assert throttle.admit("ann", "1.1.1.1", 3.0) == 57


def test_a_withdrawn_attempt_does_not_count() -> None:
    throttle = LoginThrottle(per_user_address=SlidingWindow(1, 60.0))
    assert throttle.admit("ann", "1.1.1.1", 0.0) == 0
    throttle.withdraw("ann", "1.1.1.1", 0.0)
    assert throttle.admit("ann", "1.1.1.1", 1.0) == 0
