"""The package stays readable: no function over 60 lines, no module over 400 (issue 20)."""

import ast

import pytest

from .util import ROOT

PACKAGE = ROOT / "workflow" / "lrstudy"
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_FUNCTION, MAX_MODULE = 60, 400


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_and_function_lengths(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE, f"{path.name}: {len(text.splitlines())} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION
    ]
    assert not long, f"{path.name}: {', '.join(long)}"
