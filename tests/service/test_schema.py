"""schemathesis against a real ``shoal serve``'s own /openapi.json: no 500s, and every
response matches the schema. Bounded: few examples per operation, and a service that may
hold no job (so no generated job ever fetches anything)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = Path(tmp_path_factory.mktemp("schema")) / "schema.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "shoal", "serve", "--store", str(store), "--port", "0"]
        + ["--max-jobs", "0", "--allow-private"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    reader = threading.Thread()
    try:
        for _ in range(100):  # uvicorn's start-up lines, then it listens
            line = process.stderr.readline()
            if not line:
                raise AssertionError("shoal serve ended before listening")
            if (match := _LISTENING.search(line)) is not None:
                break
        else:
            raise AssertionError("shoal serve did not say where it listens")
        # Its access log goes on: let a thread read it so that the pipe never fills.
        reader = threading.Thread(target=process.stderr.read, daemon=True)
        reader.start()
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=60)
        reader.join(timeout=60)
        process.stderr.close()


@schemathesis.serializer("application/x-ndjson")
def _lines(_context: object, value: object) -> bytes:
    """A URL list body: what was generated, as text lines."""
    return str(value).encode("utf-8", "surrogatepass")


def test_the_api_keeps_to_its_schema(service_url: str) -> None:
    schema = schemathesis.openapi.from_url(service_url + "/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def keeps_to_it(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=service_url, checks=checks)

        keeps_to_it()
