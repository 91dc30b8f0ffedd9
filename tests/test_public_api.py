"""The public names are chosen on purpose: sorted, complete, importable; core stays pure."""

from __future__ import annotations

import ast
import pathlib
import re
import types

import shoal
from shoal.core.kinds import ErrorKind

SRC = pathlib.Path(shoal.__file__).parent
DOCS = SRC.parent.parent / "docs"


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in shoal.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in shoal.__all__:
        assert hasattr(shoal, name), name


def test_all_is_exactly_the_public_attributes() -> None:
    for name in shoal.__all__:
        getattr(shoal, name)  # the lazy ones load
    public = sorted(
        name
        for name in dir(shoal)
        if not name.startswith("_") and not isinstance(getattr(shoal, name), types.ModuleType)
    )
    assert public == sorted(n for n in shoal.__all__ if n != "__version__")


def test_store_and_error_kind_are_reachable() -> None:
    from shoal.core.ports import Store

    assert shoal.Store is Store
    assert shoal.ErrorKind is ErrorKind


def test_docs_name_only_public_api() -> None:
    """``shoal.X`` in the API and error docs is a public name (or the test web)."""
    allowed = set(shoal.__all__) | {"testweb"}
    for page in ("api.md", "errors.md"):
        text = (DOCS / page).read_text()
        for name in re.findall(r"\bshoal\.(\w+)", text):
            assert name in allowed, f"docs/{page} names shoal.{name}"


def _documented_kinds() -> set[str]:
    text = (DOCS / "errors.md").read_text()
    header = text.index("| error_kind |")
    table = text[header:].split("\n\n", 1)[0].splitlines()[2:]
    return {re.match(r"\| `(\w+)` \|", row).group(1) for row in table}  # type: ignore[union-attr]


def _recorded_kinds() -> set[str]:
    """Kinds some module of shoal names (``ErrorKind.X``), besides the enum itself."""
    named: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "core" / "kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorKind"
            ):
                named.add(ErrorKind[node.attr].value)
    return named


def test_errors_doc_lists_exactly_the_kinds_recorded() -> None:
    kinds = {kind.value for kind in ErrorKind}
    assert _documented_kinds() == kinds
    assert _recorded_kinds() == kinds


def test_every_error_class_is_public() -> None:
    from shoal.core import errors

    public = {
        n for n in dir(errors) if isinstance(getattr(errors, n), type) and not n.startswith("_")
    }
    exceptions = {n for n in public if issubclass(getattr(errors, n), Exception)}
    assert exceptions <= set(shoal.__all__)


def test_every_error_class_is_raised() -> None:
    """An exception class exists only where something raises it (or a subclass)."""
    from shoal.core import errors

    raised: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name):
                    raised.add(target.id)
    for name in errors.__all__:
        cls = getattr(errors, name)
        subclasses = {name} | {c.__name__ for c in cls.__subclasses__()}
        assert subclasses & raised, f"{name} is never raised"


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


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
