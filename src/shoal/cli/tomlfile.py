"""Settings from a TOML file (``--config``): the defaults of each command's options,
checked as the options would check them, below flags and ``SHOAL_*`` variables.

A ``[fetch]`` or ``[crawl]`` table (or the top level) sets option defaults by their
names (``per-host = 4``); an ``[extract]`` table gives field rules. An unknown key or a
value of the wrong type is a one-line error naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from shoal.cli.params import ByteSize
from shoal.core.config import (
    check_bool,
    check_int,
)
from shoal.core.errors import ConfigError

__all__ = ["check_toml_values", "load_toml_defaults"]


def check_toml_values(
    path: str, command: click.Command, values: Mapping[str, Any]
) -> dict[str, Any]:
    """``values`` (a command's TOML settings by parameter name) with each value's type
    checked against its option, so that click never sees a list where it wants a number,
    or ``true`` where it wants a count. Raises ``click.BadParameter`` naming the key."""
    params = {param.name: param for param in command.params if param.name is not None}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        param = params.get(name)
        if param is None:
            checked[name] = value
            continue
        try:
            checked[name] = _toml_value(name, param, value)
        except ConfigError as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from None
    return checked


def _toml_value(name: str, param: click.Parameter, value: Any) -> Any:
    if param.multiple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ConfigError(f"{name} must be a string or a list of strings, got {value!r}")
        return items
    if isinstance(param, click.Option) and param.is_flag:
        return check_bool(name, value)
    kind = param.type
    if isinstance(kind, click.types.IntParamType | ByteSize):
        if isinstance(value, str):
            return value  # "10MiB", "8": parsed and range-checked by the option itself
        return check_int(name, value, minimum=-(2**63))
    if isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def load_toml_defaults(
    path: str,
    commands: list[str],
    *,
    known: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Read a TOML job file into click's ``default_map``.

    Top-level keys apply to every command; a ``[fetch]`` or ``[crawl]`` table
    applies to that command only. Keys are option names with ``_`` or ``-``.
    An ``[extract]`` table of ``name = "rule"`` gives the ``--extract`` rules.
    ``known`` maps each command to its accepted keys (and the parameter each
    sets); with it, a key no command takes is an error, not silently ignored.
    """
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror}"
        raise click.BadParameter(problem, param_hint="--config") from None
    except UnicodeDecodeError as exc:
        problem = f"{path} is not valid TOML: not UTF-8 text (byte offset {exc.start})"
        raise click.BadParameter(problem, param_hint="--config") from None
    except tomllib.TOMLDecodeError as exc:
        problem = f"{path} is not valid TOML: {exc}"
        raise click.BadParameter(problem, param_hint="--config") from None
    _extract_tables_as_rules(path, data, commands)
    if known is not None:
        _check_toml_keys(path, data, commands, known)
    common = {k.replace("-", "_"): v for k, v in data.items() if not isinstance(v, dict)}
    result: dict[str, dict[str, Any]] = {}
    for command in commands:
        section = data.get(command, {})
        if not isinstance(section, dict):
            raise click.BadParameter(f"[{command}] must be a table", param_hint="--config")
        values = {**common, **{k.replace("-", "_"): v for k, v in section.items()}}
        if known is not None:
            keys = known.get(command, {})
            values = {keys[k]: v for k, v in values.items() if k in keys}
        result[command] = values
    return result


def _check_toml_keys(
    path: str,
    data: dict[str, Any],
    commands: list[str],
    known: Mapping[str, Mapping[str, str]],
) -> None:
    anywhere = {key for command in commands for key in known.get(command, {})}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in commands:
                tables = ", ".join(f"[{c}]" for c in commands)
                raise click.BadParameter(
                    f"{path}: unknown table [{key}] (expected {tables})", param_hint="--config"
                )
            keys = known.get(key, {})
            for option in value:
                if option.replace("-", "_") not in keys:
                    raise click.BadParameter(
                        f"{path}: [{key}] {option!r} is not an option of shoal {key}",
                        param_hint="--config",
                    )
        elif key.replace("-", "_") not in anywhere:
            raise click.BadParameter(
                f"{path}: {key!r} is not an option of any command", param_hint="--config"
            )


def _extract_tables_as_rules(path: str, data: dict[str, Any], commands: list[str]) -> None:
    """An ``[extract]`` table (top level, or ``[crawl.extract]``) of ``name = "rule"``
    becomes the ``extract`` option's list of ``name=rule``, in table order."""
    tables = [data, *(data[c] for c in commands if isinstance(data.get(c), dict))]
    for table in tables:
        rules = table.get("extract")
        if not isinstance(rules, dict):
            continue
        for name, rule in rules.items():
            if not isinstance(rule, str):
                raise click.BadParameter(
                    f"{path}: [extract] {name} must be a string rule such as "
                    f'"css:title::text", got {rule!r}',
                    param_hint="--config",
                )
        table["extract"] = [f"{name}={rule}" for name, rule in rules.items()]
