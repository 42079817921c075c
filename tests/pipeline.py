"""Helpers for end-to-end tests: a throwaway git + DVC copy of this repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def project_files() -> list[str]:
    """Tracked files plus new files not ignored by git: what a commit of this work tree holds."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.splitlines() if line and (REPO_ROOT / line).is_file()]


def deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


class PipelineRepo:
    """A copy of the project in its own git repository, with `dvc` runnable inside it."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    @classmethod
    def create(cls, root: Path, params: dict[str, Any] | None = None) -> "PipelineRepo":
        for rel in project_files():
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, dst)
        repo = cls(root)
        if params:
            repo.update_params(params)
        repo.git("init", "-q")
        repo.git("add", "-A")
        repo.git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "snapshot")
        return repo

    def update_params(self, overrides: dict[str, Any]) -> None:
        yaml = YAML()
        path = self.root / "params.yaml"
        data = yaml.load(path.read_text())
        deep_update(data, overrides)
        with path.open("w") as handle:
            yaml.dump(data, handle)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def dvc(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(BIN / "dvc"), *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc
