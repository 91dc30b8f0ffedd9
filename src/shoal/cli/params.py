"""The kinds of value shoal's options take, read and checked by click: byte sizes
(``10MiB``), extraction rules, rates (``5/s``), durations (``1d``) and headers
(``Name: value``). A bad value is a one-line usage error naming the option.
``env_option`` declares an option that a ``SHOAL_*`` variable also sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from shoal.core.errors import ConfigError
from shoal.core.extract import FieldRule
from shoal.core.ratelimit import parse_rate
from shoal.core.revisit import parse_duration
from shoal.core.sendheaders import parse_header

__all__ = [
    "ByteSize",
    "DurationParam",
    "ExtractRuleParam",
    "F",
    "HeaderParam",
    "RateParam",
    "env_option",
    "with_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def env_option(*decls: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option also read from the environment variable ``SHOAL_<env>``."""
    return click.option(*decls, envvar=f"SHOAL_{env}", show_envvar=True, **kwargs)


def with_options(func: F, options: Sequence[Callable[[F], F]]) -> F:
    """``func`` with ``options`` added, shown by ``--help`` in the order given."""
    for option in reversed(options):
        func = option(func)
    return func


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.5
    """A byte count: ``1048576``, ``512k``, ``10MiB``, ``2G``."""

    name = "BYTES"
    _units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if not match:
            self.fail(f"{value!r} is not a byte size (examples: 1048576, 512k, 10MiB)", param, ctx)
        return int(match.group(1)) * self._units[match.group(2).lower()]


class ExtractRuleParam(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.5
    """An extraction rule, ``NAME=css:SELECTOR``, ``NAME=re:PATTERN`` or ``NAME=json:PATH``,
    checked at once; in ``SHOAL_EXTRACT`` one rule per line."""

    name = "NAME=RULE"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            FieldRule.parse(text)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return text


class _ParsedNumber(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.5
    """A number one of core's parsers reads from text (a TOML number is read as its text);
    the parser's ``ConfigError`` is the option's usage error."""

    parse: Callable[[str], float]

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        try:
            return self.parse(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class RateParam(_ParsedNumber):
    """Requests per second: ``10``, ``10/s``, ``600/m``, ``0.5/s``."""

    name = "N/s"
    parse = staticmethod(parse_rate)


class DurationParam(_ParsedNumber):
    """A duration: ``90`` (seconds), ``30m``, ``12h``, ``1d``, ``2w``."""

    name = "AGE"
    parse = staticmethod(parse_duration)


class HeaderParam(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.5
    """A request header, ``'Name: value'``, checked at once (the value is never echoed: it
    may be a secret); in ``SHOAL_HEADER`` one header per line."""

    name = "'NAME: VALUE'"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            parse_header(text)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return text
