"""pyreqwest's failures mapped to shoal's ErrorKind: reqwest names the step that failed,
its causes say why, and the kind follows from both."""

from __future__ import annotations

import pytest
from pyreqwest.exceptions import (
    BodyDecodeError,
    ConnectError,
    ConnectTimeoutError,
    ReadError,
    ReadTimeoutError,
    RequestError,
    RequestTimeoutError,
)

from shoal.core.kinds import ErrorKind
from shoal.engine.fetch.reqwest import classify_reqwest


def failure(kind: type[RequestError], message: str, *causes: str) -> RequestError:
    return kind(message, {"causes": [{"message": cause} for cause in causes]})


SENDING = "error sending request for url (http://127.0.0.1:9/)"

CASES = [
    (
        failure(
            ConnectTimeoutError,
            "connection timeout",
            SENDING,
            "client error (Connect)",
            "operation timed out",
        ),
        ErrorKind.CONNECT_TIMEOUT,
    ),
    # reqwest calls a read timeout while waiting for the head a connection timeout too
    (
        failure(ConnectTimeoutError, "connection timeout", SENDING, "operation timed out"),
        ErrorKind.READ_TIMEOUT,
    ),
    (failure(ReadTimeoutError, "read timeout", "operation timed out"), ErrorKind.READ_TIMEOUT),
    (failure(RequestTimeoutError, "request timeout"), ErrorKind.TIMEOUT),
    (
        failure(
            ConnectError,
            "connection error",
            SENDING,
            "client error (Connect)",
            "dns error",
            "failed to lookup address information",
        ),
        ErrorKind.DNS_ERROR,
    ),
    (
        failure(
            ConnectError,
            "connection error",
            SENDING,
            "client error (Connect)",
            "invalid peer certificate: UnknownIssuer",
        ),
        ErrorKind.CERTIFICATE_ERROR,
    ),
    (
        failure(
            ConnectError,
            "connection error",
            SENDING,
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ),
        ErrorKind.CONNECT_ERROR,
    ),
    (
        failure(
            ConnectError,
            "connection error",
            SENDING,
            "client error (SendRequest)",
            "connection closed before message completed",
        ),
        ErrorKind.CONNECTION_RESET,
    ),
    (
        failure(
            ConnectError,
            "connection error",
            SENDING,
            "client error (SendRequest)",
            "Connection reset by peer (os error 104)",
        ),
        ErrorKind.CONNECTION_RESET,
    ),
    (
        failure(
            BodyDecodeError,
            "error decoding body",
            "error reading a body from connection",
            "end of file before message length reached",
        ),
        ErrorKind.CONNECTION_RESET,
    ),
    (
        failure(BodyDecodeError, "error decoding body", "invalid gzip header"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    (failure(ReadError, "read error", "connection reset"), ErrorKind.CONNECTION_RESET),
    (
        failure(RequestError, "error decoding response", "invalid HTTP header parsed"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    (TimeoutError(), ErrorKind.TIMEOUT),
]


@pytest.mark.parametrize(("exc", "kind"), CASES)
def test_each_failure_has_its_kind(exc: BaseException, kind: ErrorKind) -> None:
    found, message = classify_reqwest(exc)
    assert found is kind
    assert "\n" not in message and len(message) <= 500


def test_the_message_carries_the_causes() -> None:
    exc = failure(
        ConnectError,
        "connection error",
        SENDING,
        "client error (Connect)",
        "invalid peer certificate: UnknownIssuer",
    )
    _, message = classify_reqwest(exc)
    assert message.startswith("connection error: error sending request")
    assert message.endswith("invalid peer certificate: UnknownIssuer")
