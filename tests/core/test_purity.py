"""The SIP core stays sans-IO: no module under sipws/core imports a framework or a socket."""

import ast
from pathlib import Path

import pytest

import sipws.core

FORBIDDEN = {
    "asyncio",
    "channels",
    "daphne",
    "django",
    "lxml",
    "rest_framework",
    "socket",
    "twisted",
}
CORE = Path(sipws.core.__file__).parent


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Absolute module names a module imports, by statement or by import_module("...")."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", None))
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def forbidden_imports(source: str) -> list[str]:
    tree = ast.parse(source)
    return [
        f"line {line}: {name}"
        for line, name in imported_modules(tree)
        if name.split(".")[0] in FORBIDDEN
    ]


def test_core_modules_import_no_framework_or_io():
    modules = sorted(CORE.rglob("*.py"))
    assert CORE / "message.py" in modules
    offenders = {
        str(path.relative_to(CORE)): bad
        for path in modules
        if (bad := forbidden_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "import django",
        "import os, socket",
        "from django.db import models",
        "from asyncio import sleep",
        "import lxml.etree as etree",
        "def f():\n    from channels.layers import get_channel_layer",
        "import importlib\nimportlib.import_module('rest_framework')",
        "__import__('twisted.internet')",
    ],
)
def test_the_check_catches_each_kind_of_import(source):
    assert forbidden_imports(source)


def test_the_check_allows_relative_and_stdlib_imports():
    assert forbidden_imports("from . import uri\nfrom .errors import ParseError\nimport re") == []
