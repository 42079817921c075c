"""Every DVC stage depends on each library module it can run (issue 14 item 8).

The modules a stage runs are found statically: the imports of its script, followed through every
``looptool`` module they reach (imports inside functions included, since a stage may take any
branch). A module a stage runs but does not list would leave the stage "up to date" after an edit
to it (e.g. the tool-call parser or the prompt template's code).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {n for n in names if n.split(".")[0] in ("looptool", "stages")}


def modules_run_by(script: Path) -> set[str]:
    """Repository-relative paths of every project module ``script`` can import, itself included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
            todo += [f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i]))) is not None]
    return {p.relative_to(ROOT).as_posix() for p in seen}


def stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [(name, body.get("do", body)) for name, body in spec.items()]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_the_closure_follows_lazy_imports_and_packages(tmp_path):
    # The walker itself on the repository: the eval stage reaches the tool-call parser through
    # looptool.eval.runner, and the probe stage reaches the policy engine through a function-level import.
    assert "looptool/toolcall.py" in modules_run_by(ROOT / "stages" / "eval.py")
    assert {"looptool/llm/policy.py", "looptool/llm/__init__.py"} <= modules_run_by(ROOT / "stages" / "probe.py")


@pytest.mark.parametrize("name, stage", stages(), ids=[n for n, _ in stages()])
def test_every_stage_lists_the_modules_it_runs(name, stage):
    script = stage["cmd"].split("-m ", 1)[1].split()[0]
    deps = [str(d) for d in stage.get("deps", [])]
    runs = modules_run_by(module_file(script))
    if "looptool/models.py" in runs:  # it reads LoopTool's chat template from the package
        runs.add("looptool/templates/tool_chat.jinja")
    missing = sorted(p for p in runs if not covered(p, deps))
    assert not missing, f"stage {name} runs {missing} but does not list them in dvc.yaml deps"


def test_python_bytecode_is_invisible_to_dvc():
    # Directory deps (looptool/eval) would otherwise change hash whenever Python writes __pycache__.
    patterns = (ROOT / ".dvcignore").read_text(encoding="utf-8").split()
    assert "__pycache__/" in patterns or "__pycache__" in patterns
