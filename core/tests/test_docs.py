"""The plugin documentation stays true to the code: every hook is documented with its
exact signature, every hook has a test named ``test_hook_<name>``, and the documented
conformance-kit example runs and passes."""

import inspect
import re
from pathlib import Path

import pytest

from tracklog import hookspecs

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = {
    name: fn
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "tracklog_spec")
}


def test_there_are_hooks():
    assert {"register_tracking_stores", "register_artifact_repositories", "startup"} <= set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_documented_with_exact_signature(name):
    params = ", ".join(inspect.signature(HOOKS[name]).parameters)
    assert f"### {name}({params})\n" in GUIDE


def test_guide_documents_no_unknown_hook():
    documented = set(re.findall(r"^### (\w+)\(", GUIDE, re.M))
    assert documented == set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_docstring_with_call_semantics(name):
    doc = " ".join((inspect.getdoc(HOOKS[name]) or "").split())
    semantics = ("first non-none result wins", "all implementations are called")
    assert any(phrase in doc.lower() for phrase in semantics)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_test(name):
    sources = [
        p.read_text() for d in ("core/tests", "tests") for p in (ROOT / d).rglob("test_*.py")
    ]
    assert any(f"def test_hook_{name}(" in s for s in sources), f"no test_hook_{name}"


def test_guide_kit_example_runs(pytester):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, re.S)
    example = next(b for b in blocks if "ArtifactRepositoryConformance" in b)
    pytester.makepyfile(test_guide_example=example)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 20 and "failed" not in outcomes, outcomes
