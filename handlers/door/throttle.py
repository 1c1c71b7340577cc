"""The login throttle in fixed memory: failed tries per key (a client address, a user
name), however many distinct keys are tried (issue 19, item 7).

A key with ``limit`` failures within ``window`` seconds is throttled: a try with it waits
until the ``limit``-th most recent of them ages out, when fewer than ``limit`` are left.
That is all ``wait`` needs of a key, so a key keeps no more than its last ``limit``
failure times, in a ring. (When more than ``limit`` failures land in one window, as when
tries run concurrently past ``wait`` to the password check, the wait lasts until a try is
heard, not merely until the oldest failure ages out.)

The keys live in a table of ``capacity`` slots, allocated on the first failure and never
grown: about ``capacity * (8 * limit + 29)`` bytes, 4.5 MB at the defaults; a flood of
new names replaces entries instead of adding them. Each key is kept as an 8-byte digest,
BLAKE2b keyed with a random secret of this process, never as the name itself (an
attacker's names are not kept in memory), and nobody who lacks the secret can choose
names whose digests collide or pile into one bucket. (Two keys held at once collide
with a chance of about 2**-33 in a full table; they would share one count.) A digest's
slot is found through as many buckets as slots, O(1) expected.

Which entry a new key replaces when the table is full: the slots form a list ordered by
their last failure; a failure moves its key to the back, a success frees its slot and
moves it to the front, and a new key takes the front slot: a free one if any, else the
key whose last failure is the oldest, which is also a key with no failure left in the
window if there is one. (Times come from ``time.monotonic``, so the last failure
recorded is the latest. ``wait`` moves nothing: looking does not keep an entry.)

Why eviction does not cheaply free a name under attack. To push a throttled name out
before its throttle ends, an attacker must make ``capacity`` other keys fail after the
name's last failure. Every try is charged to its client address as well, which is
throttled after ``limit`` failures per window, so one address brings at most
``limit + 1`` fresh keys per window (its own, and one name per try): flushing one name
takes about ``capacity / (limit + 1)`` addresses in one window, 10,923 at the defaults,
and buys ``limit`` more guesses at it. An attacker with N addresses thus gets about
``limit * (1 + N * (limit + 1) / capacity)`` guesses at one name per window instead of
``limit``: twice as many from 10,923 addresses, whose ``N * limit`` tries could as well
have gone to other names' passwords. The same holds for an address's own entry. A
larger ``capacity`` raises the price.

Why not a count-min sketch with rotating windows, whose memory is fixed too. It counts
failures in shared counters, so it cannot honour ``succeeded`` (lowering a count would
lower every key hashed with it), and it errs by throttling: a flood of 100,000 names
fills its counters until innocent names collide with throttled ones, and the flood locks
everyone out. The table errs the other way: it forgets a key, never invents one, and
only once ``capacity`` other keys have failed since that key's last failure.
"""

from __future__ import annotations

import hashlib
import os
import time
from array import array

_SECRET = os.urandom(16)  # per process: digests are not comparable across processes
_NEVER = float("-inf")  # an unused ring place: never within any window


def _digest(key: str) -> int:
    raw = key.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(raw, key=_SECRET, digest_size=8).digest(), "little")


class _Table:
    """``capacity`` slots of ``limit`` failure times each, in flat arrays allocated once:
    no object per key. A digest's slot is found by chaining: ``buckets[digest & mask]``
    is the first slot of its bucket, ``chain[slot]`` the next (-1: none). ``prev`` and
    ``next`` link the slots in a circle through the sentinel ``capacity``, front first
    (the next to be reused)."""

    __slots__ = (
        "buckets",
        "capacity",
        "chain",
        "digests",
        "empty",
        "head",
        "held",
        "limit",
        "live",
        "mask",
        "next",
        "prev",
        "times",
    )

    def __init__(self, capacity: int, limit: int) -> None:
        self.capacity = capacity
        self.limit = limit
        size = 1 << (capacity - 1).bit_length()  # a power of two, >= capacity
        self.mask = size - 1
        self.buckets = array("i", [-1]) * size
        self.chain = array("i", [-1]) * capacity
        self.digests = array("Q", [0]) * capacity
        self.live = bytearray(capacity)  # 1: the slot holds a key, in its bucket
        self.held = 0  # how many do
        self.empty = array("d", [_NEVER]) * limit
        self.times = array("d", [_NEVER]) * (capacity * limit)  # a ring per slot
        self.head = array("I", [0]) * capacity  # the ring place the next failure takes
        self.next = array("i", range(1, capacity + 2))
        self.next[capacity] = 0
        self.prev = array("i", range(-1, capacity))
        self.prev[0] = capacity

    def find(self, digest: int) -> int:
        """The slot holding ``digest``, or -1."""
        digests, chain = self.digests, self.chain
        slot = self.buckets[digest & self.mask]
        while slot >= 0 and digests[slot] != digest:
            slot = chain[slot]
        return slot

    def oldest(self, slot: int) -> float:
        """The oldest of the slot's last ``limit`` failures (-inf: fewer than that)."""
        return self.times[slot * self.limit + self.head[slot]]

    def record(self, digest: int, now: float) -> None:
        slot = self.find(digest)
        if slot < 0:
            slot = self.next[self.capacity]  # the front: free, or the one that matters least
            self.free(slot)
            bucket = digest & self.mask
            self.chain[slot] = self.buckets[bucket]
            self.buckets[bucket] = slot
            self.digests[slot] = digest
            self.live[slot] = 1
            self.held += 1
        head, limit = self.head[slot], self.limit
        self.times[slot * limit + head] = now
        self.head[slot] = head + 1 if head + 1 < limit else 0
        self._move(slot, self.prev[self.capacity])  # to the back

    def free(self, slot: int) -> None:
        """Forget the slot's key and failures, if it holds any; it is reused first."""
        if not self.live[slot]:
            return
        buckets, chain, bucket = self.buckets, self.chain, self.digests[slot] & self.mask
        if buckets[bucket] == slot:
            buckets[bucket] = chain[slot]
        else:
            before = buckets[bucket]
            while chain[before] != slot:
                before = chain[before]
            chain[before] = chain[slot]
        self.live[slot] = 0
        self.held -= 1
        base = slot * self.limit
        self.times[base : base + self.limit] = self.empty
        self.head[slot] = 0
        self._move(slot, self.capacity)  # to the front

    def _move(self, slot: int, after: int) -> None:
        """Unlink ``slot`` from the circle and link it in again after ``after``."""
        prevs, nexts = self.prev, self.next
        if after == slot:
            return
        before, behind = prevs[slot], nexts[slot]
        nexts[before] = behind
        prevs[behind] = before
        follower = nexts[after]
        nexts[after] = slot
        prevs[slot] = after
        nexts[slot] = follower
        prevs[follower] = slot


class Throttle:
    """Failed logins per key (a client address, a user name): past ``limit`` failures
    within ``window`` seconds, further tries with that key wait. At most ``capacity``
    keys are held; memory stays fixed however many are tried (see the module's text)."""

    __slots__ = ("_table", "capacity", "limit", "window")

    def __init__(self, limit: int = 5, window: float = 300.0, capacity: int = 65_536) -> None:
        if limit < 1 or not window > 0 or not 1 <= capacity < 2**31 - 1:
            raise ValueError(f"throttle: limit {limit}, window {window}, capacity {capacity}")
        self.limit = limit
        self.window = float(window)
        self.capacity = capacity
        self._table: _Table | None = None  # allocated on the first failure

    def wait(self, *keys: str, now: float | None = None) -> float:
        """Seconds before another try is heard from any of ``keys`` (0: now)."""
        table = self._table
        if table is None:
            return 0.0
        now = time.monotonic() if now is None else now
        since = now - self.window
        longest = 0.0
        for key in keys:
            slot = table.find(_digest(key))
            if slot >= 0 and (oldest := table.oldest(slot)) > since:
                longest = max(longest, oldest + self.window - now)
        return longest

    def failed(self, *keys: str, now: float | None = None) -> None:
        """Count a failed try against each of ``keys``."""
        now = time.monotonic() if now is None else now
        if self._table is None:
            self._table = _Table(self.capacity, self.limit)
        for key in keys:
            self._table.record(_digest(key), now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of each of ``keys``."""
        table = self._table
        if table is None:
            return
        for key in keys:
            slot = table.find(_digest(key))
            if slot >= 0:
                table.free(slot)

    def __len__(self) -> int:
        """How many keys are held (at most ``capacity``)."""
        return 0 if self._table is None else self._table.held


__all__ = ["Throttle"]
