"""Where a relay (handlers/relay/relay.py) stands in its exchange: one named state, and the
steps allowed between states, declared in one table and checked in one place.

Only the response's direction has steps. The request's body either goes whole with the
request or streams in through the transfer's write function, which paces it; neither
changes what the relay may do next.

    STARTING ─start─▶ AWAITING_HEAD ─head─▶ RELAYING ─finish─▶ DONE
                            │                   │
                            └─head refused─▶ UNRELAYABLE ─fail or finish─▶ FAILED

A relay that has not ended may also fail at once (FAILED: the transfer broke off), or
hear that the client has gone (CLIENT_GONE, from which it only fails: a close). Every
step is checked against TRANSITIONS by ``checked_step``.
"""

from __future__ import annotations

import enum


class RelayState(enum.Enum):
    STARTING = "starting"  # made; nothing sent to the backend yet
    AWAITING_HEAD = "awaiting head"  # the request is on its way; no response head yet
    RELAYING = "relaying"  # the head is in; the body travels as its ``Body`` says
    UNRELAYABLE = "unrelayable"  # the head cannot be sent on: a 502 when the backend is done
    CLIENT_GONE = "client gone"  # the client left, or the handler answered it itself
    DONE = "done"  # the response is complete
    FAILED = "failed"  # ended without a complete response: an error page, or a close


# Each state also as a module name: a member looked up on its Enum class costs about 100 ns
# (Python 3.11), and the relay compares one for every chunk of a body.
STARTING = RelayState.STARTING
AWAITING_HEAD = RelayState.AWAITING_HEAD
RELAYING = RelayState.RELAYING
UNRELAYABLE = RelayState.UNRELAYABLE
CLIENT_GONE = RelayState.CLIENT_GONE
DONE = RelayState.DONE
FAILED = RelayState.FAILED

TRANSITIONS: dict[RelayState, frozenset[RelayState]] = {
    STARTING: frozenset({AWAITING_HEAD, CLIENT_GONE, FAILED}),
    AWAITING_HEAD: frozenset({RELAYING, UNRELAYABLE, CLIENT_GONE, FAILED}),
    # A held head may still be refused when the response is finally written.
    RELAYING: frozenset({UNRELAYABLE, CLIENT_GONE, DONE, FAILED}),
    UNRELAYABLE: frozenset({CLIENT_GONE, FAILED}),
    CLIENT_GONE: frozenset({FAILED}),
    DONE: frozenset(),
    FAILED: frozenset(),
}


class RelayStateError(RuntimeError):
    """A step the table does not allow: a bug in the relay or in its caller."""


def may_step(current: RelayState, new: RelayState) -> bool:
    """Whether the table allows the step from ``current`` to ``new``."""
    return new in TRANSITIONS[current]


def checked_step(current: RelayState, new: RelayState) -> RelayState:
    """``new``, when the table allows the step from ``current``; else RelayStateError."""
    if new not in TRANSITIONS[current]:
        raise RelayStateError(f"relay cannot go from {current.name} to {new.name}")
    return new


__all__ = [
    "AWAITING_HEAD",
    "CLIENT_GONE",
    "DONE",
    "FAILED",
    "RELAYING",
    "STARTING",
    "TRANSITIONS",
    "UNRELAYABLE",
    "RelayState",
    "RelayStateError",
    "checked_step",
    "may_step",
]
