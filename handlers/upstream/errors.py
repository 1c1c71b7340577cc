"""Why a transfer to a backend failed, and the status that failure implies.

Each error names its kind (a bounded label for the metrics and the log) and the status the
client is answered with: a backend that took too long is a 504, any other failure a 502.
"""

from __future__ import annotations

import pycurl
from tornado.httpclient import HTTPClientError

# libcurl's error numbers, by the kind of failure they mean.
_KINDS = {
    pycurl.E_COULDNT_CONNECT: "connect",
    pycurl.E_COULDNT_RESOLVE_HOST: "connect",
    pycurl.E_OPERATION_TIMEDOUT: "timeout",
    pycurl.E_RECV_ERROR: "reset",
    pycurl.E_SEND_ERROR: "reset",
    pycurl.E_GOT_NOTHING: "reset",
    pycurl.E_PARTIAL_FILE: "reset",
    pycurl.E_SSL_CONNECT_ERROR: "tls",
    pycurl.E_PEER_FAILED_VERIFICATION: "tls",
}


class UpstreamError(HTTPClientError):
    """A transfer that ended without a complete response; ``errno`` is libcurl's."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(599, message)
        self.errno = errno

    @property
    def kind(self) -> str:
        """``connect``, ``timeout``, ``reset``, ``tls`` or ``other``."""
        return _KINDS.get(self.errno, "other")

    @property
    def status(self) -> int:
        """The status a client is answered with: 504 for a timeout, else 502."""
        return 504 if self.kind == "timeout" else 502
