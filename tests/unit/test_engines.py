"""The engine interface (`ml_platform.engines`): every operation a job needs is declared once and
implemented by both engines, a test runs each on both (its `parity` marker, checked while it runs),
and no module outside the engines branches on an engine's name."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import ml_platform
from ml_platform.engines import ENGINES, OPERATIONS, EmbeddedEngine, EngineMissing, SparkEngine, operation
from ml_platform.engines.base import implemented_by

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _all_operations() -> dict:
    for m in pkgutil.walk_packages(ml_platform.__path__, "ml_platform."):
        if not m.name.endswith("__main__"):  # `python -m ml_platform.cli` runs the command line
            importlib.import_module(m.name)
    return dict(OPERATIONS)


def _parity_marked() -> set[str]:
    """The operations named by `@pytest.mark.parity(...)` in the test suite."""
    named = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.mark.parity":
                named |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return named


def test_every_operation_has_both_engines_and_a_parity_test():
    ops = _all_operations()
    assert len(ops) >= 9, sorted(ops)  # ingest, the gate, snapshots, labels, training sets, publish, skew, scoring
    for name, op in ops.items():
        assert implemented_by(op) == [e.name for e in ENGINES], name
        assert op.__doc__, f"{name} has no docstring: the declaration is the operation's contract"
    marked = _parity_marked()
    assert sorted(set(ops) - marked) == [], "operations no parity test runs on both engines"
    assert sorted(marked - set(ops)) == [], "parity markers naming no operation"


def test_an_operation_an_engine_does_not_implement_is_named():
    @operation
    def demo_rows(engine, path: str) -> int:
        """Rows at `path`."""

    try:
        demo_rows.register(EmbeddedEngine, lambda engine, path: 3)
        assert demo_rows(EmbeddedEngine("test"), "x") == 3
        assert implemented_by(demo_rows) == ["embedded"]
        with pytest.raises(EngineMissing, match=r"test_engines\.demo_rows has no implementation for SparkEngine"):
            demo_rows(SparkEngine("test"), "x")  # no session is started to find out
    finally:
        OPERATIONS.pop(f"{__name__.removeprefix('ml_platform.')}.demo_rows")


def test_engines_compare_by_name_and_reason_and_say_whether_they_start_a_jvm():
    assert EmbeddedEngine("auto: small") == EmbeddedEngine("auto: small") != EmbeddedEngine("forced")
    assert SparkEngine("x") != EmbeddedEngine("x")
    assert (SparkEngine.starts_jvm, EmbeddedEngine.starts_jvm) == (True, False)
    assert EmbeddedEngine("why").to_json() == {"engine": "embedded", "reason": "why"}
    assert EmbeddedEngine("e").start("job") is None  # nothing to start


_NAME_BRANCH = re.compile(r"""[=!]=\s*["'](spark|embedded)["']|["'](spark|embedded)["']\s*[=!]=|\.engine\s*[=!]=""")


def test_no_module_outside_the_engines_branches_on_an_engines_name():
    hits = []
    for folder in ("include/ml_platform", "plugins", "spark_jobs", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            if "engines" in path.relative_to(ROOT).parts:
                continue
            hits += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                     if _NAME_BRANCH.search(line)]  # fmt: skip
    assert hits == []
