"""The login throttle in fixed memory (handlers/door/throttle.py): today's behaviour, the
order in which a full table gives up entries, memory that stops growing at capacity, and
a name under attack that keeps its throttle while 100,000 other names fail."""

from __future__ import annotations

import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.door.throttle import Throttle
from tests.support.properties import examples

# -- the behaviour of the class it replaces (handlers/door/access.py's Throttle) -------


def test_limit_failures_throttle_until_the_oldest_ages_out():
    throttle = Throttle(limit=3, window=60)
    for t in (0.0, 1.0):
        throttle.failed("user a", now=t)
    assert throttle.wait("user a", now=2) == 0  # two failures: below the limit
    throttle.failed("user a", now=2)
    assert throttle.wait("user a", now=2.5) == pytest.approx(57.5)
    assert throttle.wait("user a", now=59.9) == pytest.approx(0.1)
    assert throttle.wait("user a", now=60) == 0  # the failure at 0 aged out


def test_more_failures_than_the_limit_wait_until_a_try_is_heard():
    # Concurrent tries can all pass wait() before any of them fails. Today's class then
    # answers "until the oldest ages out" (7 s), after which the key is still throttled.
    throttle = Throttle(limit=2, window=10)
    for t in (0.0, 1.0, 2.0):
        throttle.failed("user a", now=t)
    assert throttle.wait("user a", now=3) == pytest.approx(8)
    assert throttle.wait("user a", now=10.5) > 0
    assert throttle.wait("user a", now=11) == 0


def test_success_clears_the_key_and_only_it():
    throttle = Throttle(limit=2, window=60)
    for t in (0.0, 1.0):
        throttle.failed("client x", "user a", now=t)
    assert throttle.wait("user a", now=2) > 0
    throttle.succeeded("user a")
    assert throttle.wait("user a", now=2) == 0
    assert throttle.wait("client x", now=2) > 0
    throttle.failed("user a", now=3)  # the old failures are gone: one is not enough
    assert throttle.wait("user a", now=3) == 0
    throttle.succeeded("user never-seen")  # no harm


def test_keys_are_independent():
    throttle = Throttle(limit=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert throttle.wait("client x", "user a", now=t) == 0
        throttle.failed("client x", "user a", now=t)
    assert throttle.wait("user a", now=3) == pytest.approx(57)
    assert throttle.wait("client x", now=3) == pytest.approx(57)
    assert throttle.wait("client y", "user b", now=3) == 0
    assert throttle.wait("user A", now=3) == 0  # no folding of names
    assert throttle.wait("client x", now=61) == 0


def test_a_calls_wait_is_the_longest_of_its_keys():
    throttle = Throttle(limit=1, window=60)
    throttle.failed("client x", now=0)
    throttle.failed("user a", now=10)
    assert throttle.wait("client x", now=20) == pytest.approx(40)
    assert throttle.wait("client x", "user a", now=20) == pytest.approx(50)
    assert throttle.wait("user a", "client x", now=20) == pytest.approx(50)
    assert throttle.wait("client y", "client x", now=20) == pytest.approx(40)
    assert throttle.wait(now=20) == 0


def test_the_clock_is_monotonic_time_by_default():
    throttle = Throttle(limit=1, window=60)
    assert throttle.wait("user a") == 0
    throttle.failed("user a")
    assert 59 < throttle.wait("user a") <= 60


@pytest.mark.parametrize("bad", [{"limit": 0}, {"window": 0}, {"capacity": 0}])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Throttle(**bad)


def test_names_are_not_kept():
    throttle = Throttle()
    name = "".join(["user ", "mallory-", "0123456789"])  # a new string, not interned
    before = sys.getrefcount(name)
    throttle.failed(name, now=0)
    assert sys.getrefcount(name) == before
    assert len(throttle) == 1


# -- which entry a full table gives up --------------------------------------------------


def throttled(throttle: Throttle, now: float, *keys: str) -> list[str]:
    return [key for key in keys if throttle.wait(key, now=now) > 0]


def test_a_full_table_first_gives_up_a_key_with_no_failure_left_in_the_window():
    throttle = Throttle(limit=1, window=10, capacity=2)
    throttle.failed("a", now=0)
    throttle.failed("b", now=5)
    throttle.failed("c", now=12)  # a's failure aged out at 10; b's is still in the window
    assert throttled(throttle, 12, "a", "b", "c") == ["b", "c"]
    assert len(throttle) == 2


def test_then_the_key_whose_last_failure_is_oldest():
    throttle = Throttle(limit=1, window=100, capacity=3)
    for t, key in enumerate("abc"):
        throttle.failed(key, now=t)
    throttle.wait("a", now=3)  # looking keeps nothing
    throttle.failed("d", now=4)  # a's last failure is the oldest
    assert throttled(throttle, 4, "a", "b", "c", "d") == ["b", "c", "d"]
    throttle.failed("b", now=5)  # b was in before c, but failed again after it
    throttle.failed("e", now=6)
    assert throttled(throttle, 6, "b", "c", "d", "e") == ["b", "d", "e"]
    assert len(throttle) == 3


def test_a_slot_freed_by_success_is_taken_before_any_key_is_given_up():
    throttle = Throttle(limit=1, window=100, capacity=3)
    for t, key in enumerate("abc"):
        throttle.failed(key, now=t)
    throttle.succeeded("c")
    throttle.failed("d", now=4)
    assert throttled(throttle, 4, "a", "b", "c", "d") == ["a", "b", "d"]


# -- fixed memory ---------------------------------------------------------------------


def test_memory_stops_growing_once_capacity_is_reached():
    throttle = Throttle(capacity=1000)
    names = [f"user n{i}" for i in range(100_000)]  # made before tracing starts
    tracemalloc.start()
    try:
        for i in range(0, 1000, 100):
            throttle.failed(*names[i : i + 100], now=i / 1000)
        at_capacity = tracemalloc.get_traced_memory()[0]
        for i in range(1000, 100_000, 100):
            throttle.failed(*names[i : i + 100], now=i / 1000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # A dict entry per name would add megabytes; the table adds nothing.
    assert after - at_capacity < 4096, (at_capacity, after)
    assert len(throttle) == 1000


# -- a name under attack ----------------------------------------------------------------


def attack(addresses: int, *, limit: int = 5, window: float = 300.0, capacity: int = 1000):
    """Alice is throttled at t=4 (her 5 failures at 0-4); then 100,000 tries within her
    window go through the login's order: ``wait`` first, ``failed`` only for a try that
    is heard. Each has a new name and comes from ``addresses`` addresses in turn, except
    every 1,000th, which tries alice from an address kept for her. Returns the
    throttle, how many of the other tries were heard, and whether one at alice was."""
    throttle = Throttle(limit, window, capacity)
    for t in range(limit):
        throttle.failed("client 198.51.100.7", "user alice", now=float(t))
    heard, alice_heard = 0, False
    for i in range(100_000):
        now = 10 + i * (window - 20) / 100_000
        if i % 1000 == 999:
            keys = ("client 192.0.2.1", "user alice")
        else:
            keys = (f"client 10.0.{i % addresses // 256}.{i % addresses % 256}", f"user n{i}")
        if throttle.wait(*keys, now=now) == 0:
            throttle.failed(*keys, now=now)
            alice_heard |= keys[1] == "user alice"
            heard += keys[1] != "user alice"
    return throttle, heard, alice_heard


def test_a_name_under_attack_keeps_its_throttle_while_100000_other_names_fail():
    """Proves that, with the login's order of calls, 100,000 names failing from fewer
    than capacity / (limit + 1) addresses cannot push a throttled name out of the table
    within its window: each address is throttled after ``limit`` tries, so they bring
    too few fresh keys, and every try at the name meanwhile, even from a fresh address,
    is refused. It does not prove that more addresses could not: the next test prices
    that."""
    addresses = 1000 // (5 + 1) - 1  # 165: with alice and her address, 992 keys
    throttle, heard, alice_heard = attack(addresses)
    assert heard == addresses * 5  # every address was stopped after its 5 tries
    assert not alice_heard
    assert len(throttle) == 2 + addresses * 6
    assert throttle.wait("user alice", now=299) == pytest.approx(1)  # her failure at 0


def test_the_price_of_pushing_a_name_out_is_capacity_over_limit_plus_one_addresses():
    """Pins the bound the module's docstring gives: with a few more addresses than
    capacity / (limit + 1), in one window, the name is given up and a try at it is
    heard (so the previous test does not hold for any number of addresses)."""
    throttle, heard, alice_heard = attack(1000 // (5 + 1) + 5)
    assert heard == (1000 // 6 + 5) * 5
    assert alice_heard


# -- against an exact model -------------------------------------------------------------


class Exact:
    """Every failure of every key, kept: a key waits until fewer than ``limit`` of its
    failures are within the window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.failures: dict[str, list[float]] = {}

    def wait(self, *keys: str, now: float) -> float:
        longest = 0.0
        for key in keys:
            recent = [t for t in self.failures.get(key, []) if t > now - self.window]
            if len(recent) >= self.limit:
                longest = max(longest, recent[-self.limit] + self.window - now)
        return longest

    def failed(self, *keys: str, now: float) -> None:
        for key in keys:
            self.failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self.failures.pop(key, None)


KEYS = [f"user {c}" for c in "abcdefgh"]
steps = st.lists(
    st.tuples(
        st.sampled_from(["wait", "failed", "succeeded"]),
        st.lists(st.sampled_from(KEYS), min_size=1, max_size=3),
        st.one_of(st.integers(0, 30).map(float), st.floats(0, 30)),
    ),
    max_size=60,
)


def run(throttle: Throttle, exact: Exact, steps, check) -> None:
    now = 0.0
    for op, keys, step in steps:
        now += step
        if op == "wait":
            check(throttle, exact, keys, now)
        elif op == "failed":
            throttle.failed(*keys, now=now)
            exact.failed(*keys, now=now)
        else:
            throttle.succeeded(*keys)
            exact.succeeded(*keys)
        for key in KEYS:
            check(throttle, exact, [key], now)


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(1, 4), st.floats(1, 100), st.integers(len(KEYS), len(KEYS) + 3), steps)
def test_under_capacity_it_answers_as_the_exact_model(limit, window, capacity, steps):
    def check(throttle, exact, keys, now):
        assert throttle.wait(*keys, now=now) == exact.wait(*keys, now=now)

    run(Throttle(limit, window, capacity), Exact(limit, window), steps, check)


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(1, 4), st.floats(1, 100), st.integers(1, len(KEYS) - 1), steps)
def test_over_capacity_it_forgets_but_never_invents(limit, window, capacity, steps):
    def check(throttle, exact, keys, now):
        got, want = throttle.wait(*keys, now=now), exact.wait(*keys, now=now)
        assert got <= want
        if len(keys) == 1:
            assert got in (0.0, want)

    throttle = Throttle(limit, window, capacity)
    run(throttle, Exact(limit, window), steps, check)
    assert len(throttle) <= capacity
