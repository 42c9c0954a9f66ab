"""docs/contract.md is generated from the contracts' docstrings by tools/contract-reference
and must match the code; every contract method a plugin implements is documented."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "contract-reference"
SOURCES = ("core/src/tracklog/stores.py", "core/src/tracklog/importing/store.py",
           "core/src/tracklog/artifacts/base.py")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_contract_reference_is_up_to_date():
    result = check(ROOT)
    assert result.returncode == 0, (
        "docs/contract.md is out of date with the contract docstrings; "
        "run `python3 tools/contract-reference` and commit the result.\n" + result.stderr
    )


def test_check_fails_when_a_docstring_changes(tmp_path):
    for rel in (*SOURCES, "docs/contract.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    stores = tmp_path / SOURCES[0]
    text = stores.read_text()
    assert "Read one run, deleted or not." in text
    stores.write_text(text.replace("Read one run, deleted or not.", "Read one run."))
    result = check(tmp_path)
    assert result.returncode == 1
    assert "run: python3 tools/contract-reference" in result.stderr
    assert "-Read one run, deleted or not." in result.stderr


def test_every_contract_method_has_a_docstring():
    """The methods a backend implements or calls, on the store and repository contracts
    (TraceStore excepted), each say what they do."""
    contracts = {
        SOURCES[0]: {"TrackingStore", "ModelRegistryStore"},
        SOURCES[1]: {"ArtifactRepository", "MultipartUploadRepository",
                     "PresignedDownloadRepository"},
    }
    missing = []
    for rel, names in contracts.items():
        tree = ast.parse((ROOT / rel).read_text())
        for cls in tree.body:
            if not (isinstance(cls, ast.ClassDef) and cls.name in names):
                continue
            for node in cls.body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("__"):
                    private_helper = node.name.startswith("_") and not any(
                        ast.unparse(d).endswith("abstractmethod") for d in node.decorator_list
                    ) and node.name != "_mkdir"
                    if not private_helper and not ast.get_docstring(node):
                        missing.append(f"{cls.name}.{node.name}")
    assert not missing, f"contract methods without a docstring: {missing}"
