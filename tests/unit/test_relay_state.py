"""The relay's state machine on its own (handlers/relay/state.py), and the state a Relay
shows: which steps the table allows and refuses, and what ``repr`` tells a reader."""

from __future__ import annotations

import asyncio

import pytest

from handlers.relay.state import (
    TRANSITIONS,
    RelayState,
    RelayStateError,
    checked_step,
    may_step,
)
from tests.support.relay import run

S = RelayState
ALLOWED = [
    (S.STARTING, S.AWAITING_HEAD),
    (S.AWAITING_HEAD, S.RELAYING),
    (S.AWAITING_HEAD, S.UNRELAYABLE),
    (S.RELAYING, S.DONE),
    (S.RELAYING, S.UNRELAYABLE),  # a held head the sink refuses at the end
    (S.RELAYING, S.FAILED),
    (S.UNRELAYABLE, S.FAILED),
    (S.CLIENT_GONE, S.FAILED),
]
REFUSED = [
    (S.STARTING, S.RELAYING),  # no head before the request is sent
    (S.AWAITING_HEAD, S.DONE),  # no response without a head
    (S.UNRELAYABLE, S.DONE),
    (S.CLIENT_GONE, S.DONE),  # a client that left gets no complete response
    (S.CLIENT_GONE, S.RELAYING),
    (S.DONE, S.FAILED),  # an ended relay stays as it ended
    (S.FAILED, S.DONE),
    (S.DONE, S.CLIENT_GONE),
    (S.RELAYING, S.AWAITING_HEAD),  # no step goes back
]


@pytest.mark.parametrize("current, new", ALLOWED)
def test_steps_the_table_allows(current, new):
    assert may_step(current, new)
    assert checked_step(current, new) is new


@pytest.mark.parametrize("current, new", REFUSED)
def test_steps_the_table_refuses(current, new):
    assert not may_step(current, new)
    with pytest.raises(RelayStateError, match=f"from {current.name} to {new.name}"):
        checked_step(current, new)


def test_every_state_but_the_ends_may_fail_or_lose_its_client():
    for state in RelayState:
        ended = state in (S.DONE, S.FAILED)
        assert may_step(state, S.FAILED) is not ended
        assert may_step(state, S.CLIENT_GONE) is (not ended and state is not S.CLIENT_GONE)
        assert (TRANSITIONS[state] == frozenset()) is ended
        assert state not in TRANSITIONS[state]  # no state steps to itself


def test_a_relay_shows_its_state_and_mode():
    async def check(make_relay):
        relay, sink = make_relay(start=False)
        assert repr(relay) == "<Relay app GET /.site.app/page STARTING ->"
        relay.start({}, upload=False, length=None)
        assert repr(relay) == "<Relay app GET /.site.app/page AWAITING_HEAD ->"
        relay.headers_received(200, "OK", [("Content-Type", "image/png")])
        assert repr(relay) == "<Relay app GET /.site.app/page RELAYING STREAM>"
        sink.flushes[0].set_result(None)  # the client takes the head
        await asyncio.sleep(0)
        relay.finish()
        assert repr(relay) == "<Relay app GET /.site.app/page DONE STREAM>"

    run(check)


def test_a_relay_refuses_a_step_out_of_turn_and_ignores_late_calls():
    def check(make_relay):
        relay, sink = make_relay(start=False)
        with pytest.raises(RelayStateError):
            relay._step(S.DONE)  # not started: nothing to be done
        relay.headers_received(200, "OK", [])  # before start: no request, so no head
        assert relay.state is S.STARTING and relay.body is None
        relay.start({}, upload=False, length=None)
        with pytest.raises(RelayStateError):
            relay.start({}, upload=False, length=None)  # one request per relay
        relay.client_left()
        relay.client_left()  # said twice: no second step
        assert relay.state is S.CLIENT_GONE
        relay.finish()
        assert relay.state is S.FAILED
        relay.fail(None)  # a late end changes nothing
        relay.client_left()
        assert relay.state is S.FAILED
        assert sink.calls == [("close",)]  # all a client that left is sent

    run(check)
