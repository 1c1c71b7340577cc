"""libcurl's multi interface on Tornado's IOLoop: the sockets libcurl asks to watch, its
timer, and a "kick" (act soon) that many events in one loop iteration share. A mixin of
``RelayClient`` (handlers/upstream/client.py), which delivers what libcurl recorded in
``_settle`` after each action."""

from __future__ import annotations

import logging
from typing import Any

import pycurl
from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

_SOCKET_EVENTS = {
    pycurl.POLL_NONE: IOLoop.ERROR,
    pycurl.POLL_IN: IOLoop.READ,
    pycurl.POLL_OUT: IOLoop.WRITE,
    pycurl.POLL_INOUT: IOLoop.READ | IOLoop.WRITE,
}


class CurlOnLoop:
    """Drives ``_multi`` from ``loop``'s events; the state it keeps is declared here."""

    loop: IOLoop
    _multi: pycurl.CurlMulti
    _fds: set[int]  # the sockets watched for libcurl
    _timer: object | None
    _timer_due: float
    _kicked: bool  # an action is already scheduled

    def _watch_loop(self, loop: IOLoop) -> None:
        self.loop = loop
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._set_timer)
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch_socket)
        self._fds = set()
        self._timer = None
        self._timer_due = 0.0
        self._kicked = False

    def _unwatch_loop(self) -> None:
        for fd in self._fds:
            self.loop.remove_handler(fd)
        self._fds.clear()
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
            self._timer = None

    def _settle(self) -> None:
        raise NotImplementedError

    def _watch_socket(self, event: int, fd: int, multi: Any, data: Any) -> None:
        # libcurl may close a socket and open another with the same number without
        # saying so in between: always remove before adding.
        if fd in self._fds:
            self._fds.discard(fd)
            self.loop.remove_handler(fd)
        if event != pycurl.POLL_REMOVE:
            self.loop.add_handler(fd, self._on_socket, _SOCKET_EVENTS[event])
            self._fds.add(fd)

    def _set_timer(self, msecs: int) -> None:
        if msecs < 0:
            due = None
        elif msecs == 0:
            self._kick()
            return
        else:
            due = self.loop.time() + msecs / 1000.0
            if self._timer is not None and abs(due - self._timer_due) < 0.001:
                return  # the timer already set for then
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
            self._timer = None
        if due is not None:
            self._timer_due = due
            self._timer = self.loop.call_at(due, self._on_timer)

    def _kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            self.loop.add_callback(self._on_kick)

    def _on_kick(self) -> None:
        self._kicked = False
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_timer(self) -> None:
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_socket(self, fd: int, events: int) -> None:
        action = 0
        if events & IOLoop.READ:
            action |= pycurl.CSELECT_IN
        if events & IOLoop.WRITE:
            action |= pycurl.CSELECT_OUT
        if events & IOLoop.ERROR:
            action |= pycurl.CSELECT_ERR
        self._act(fd, action)

    def _act(self, fd: int, action: int) -> None:
        try:
            self._multi.socket_action(fd, action)
        except pycurl.error as exc:
            log.error("libcurl's multi handle failed: %s", exc)
        self._settle()
