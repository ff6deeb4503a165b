"""Tests for nsight_async/__init__.py: the public API is an explicit, sorted, complete list."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nsight_async

PACKAGE_DIR = Path(nsight_async.__file__).parent


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: SCREAMING_CASE constants, then CamelCase, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    """``__all__`` is sorted (in ruff's RUF022 order), so additions land in one obvious place."""
    assert nsight_async.__all__ == sorted(nsight_async.__all__, key=_isort_style)


def test_all_has_no_duplicates() -> None:
    """Every public name is listed once."""
    assert len(set(nsight_async.__all__)) == len(nsight_async.__all__)


@pytest.mark.parametrize("name", nsight_async.__all__)
def test_every_listed_name_exists_and_imports(name: str) -> None:
    """Every name in ``__all__`` exists and can be imported from the package."""
    assert hasattr(nsight_async, name)
    namespace: dict[str, object] = {}
    exec(f"from nsight_async import {name}", namespace)  # noqa: S102  # names come from __all__
    assert namespace[name] is getattr(nsight_async, name)


def test_star_import_gives_exactly_all() -> None:
    """``from nsight_async import *`` binds exactly the names in ``__all__``."""
    namespace: dict[str, object] = {}
    exec("from nsight_async import *", namespace)  # noqa: S102  # the behaviour under test
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(nsight_async.__all__)


def test_all_is_complete() -> None:
    """Every public class or function the package re-exports is listed in ``__all__``."""
    exported = {
        name
        for name, obj in vars(nsight_async).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", "").startswith("nsight_async")
    }
    assert exported <= set(nsight_async.__all__)


def test_public_objects_claim_to_come_from_private_modules_only() -> None:
    """Re-exported objects are defined in ``_private`` modules (the public surface is __init__)."""
    for name in nsight_async.__all__:
        obj = getattr(nsight_async, name)
        module = getattr(obj, "__module__", None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert module is not None
            assert module.split(".")[1].startswith("_"), f"{name} from {module}"


def test_version_is_a_string() -> None:
    """``__version__`` is a non-empty string."""
    assert isinstance(nsight_async.__version__, str)
    assert nsight_async.__version__


@pytest.mark.parametrize(
    "module", ["_parser", "_shapes", "_specs", "_tree", "_prolog", "_convert", "_models", "_vocab"]
)
def test_private_modules_import(module: str) -> None:
    """Each pure-layer module imports on its own."""
    assert importlib.import_module(f"nsight_async.{module}")


def test_parsing_layer_imports_neither_httpx_nor_asyncio() -> None:
    """Importing the parsing layer (_shapes, hence _parser) pulls in neither httpx nor asyncio."""
    # The package __init__ is bypassed with a bare package module, so the check stays about
    # the parsing layer even once __init__ re-exports the (httpx-based) client.
    code = textwrap.dedent(
        f"""
        import sys, types
        pkg = types.ModuleType("nsight_async")
        pkg.__path__ = [{str(PACKAGE_DIR)!r}]
        sys.modules["nsight_async"] = pkg
        import nsight_async._shapes, nsight_async._parser
        bad = [m for m in ("httpx", "asyncio", "aiohttp", "anyio") if m in sys.modules]
        assert not bad, bad
        print("clean")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"
