"""The public names are chosen on purpose: sorted, complete, importable; core stays pure."""

from __future__ import annotations

import ast
import pathlib

import shoal

SRC = pathlib.Path(shoal.__file__).parent


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in shoal.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in shoal.__all__:
        assert hasattr(shoal, name), name


def test_every_error_class_is_public() -> None:
    from shoal.core import errors

    public = {
        n for n in dir(errors) if isinstance(getattr(errors, n), type) and not n.startswith("_")
    }
    exceptions = {n for n in public if issubclass(getattr(errors, n), Exception)}
    assert exceptions <= set(shoal.__all__)


def test_core_imports_nothing_impure() -> None:
    """core/ does no I/O: no asyncio, sockets, clock, randomness or logging, and no shoal
    module outside core."""
    # ``random`` is allowed: core takes a seeded ``random.Random`` and names its type.
    forbidden = {
        "asyncio",
        "socket",
        "time",
        "logging",
        "threading",
        "os",
        "subprocess",
        "aiohttp",
        "sqlite3",
    }
    for path in sorted((SRC / "core").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top not in forbidden, f"{path.name} imports {module}"
                if top == "shoal":
                    assert module.startswith("shoal.core"), f"{path.name} imports {module}"
