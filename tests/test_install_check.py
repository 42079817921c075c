"""The GPU install resolves (issue 16 item 0): pins checked against the requirements their
packages declare, offline; and, marked slow, pip's own resolver on the public index (metadata only)."""

from __future__ import annotations

import importlib.metadata
import tomllib

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from looptool.install_check import REPO_ROOT, SDIST_ONLY, TARGETS, project_requirements, resolve, resolve_target

# Requirements on the packages this project pins, as declared in the METADATA of each wheel, read
# on 2026-12-02 from files.pythonhosted.org with HTTP range requests (looptool/install_check.py
# reads them the same way) or, for the ones installed here, from this venv's dist-info. Only the
# lines that name a package of the pin set are kept.
DECLARED = {
    ("vllm", "0.33.0"): [
        "torch==2.14.0", "transformers<5.21.0,>=5.16.1", "tokenizers>=0.23.2", "safetensors>=0.6.2",
        "huggingface_hub>=1.31.0", "jsonschema>=4.23.0", "numpy", "tqdm", "torchvision==0.29.0",
        "mistral_common[image]>=1.11.6", "numba==0.65.0", "compressed-tensors==0.17.0",
        'xgrammar==0.2.8; platform_machine == "x86_64" or platform_machine == "aarch64" or platform_machine == "arm64" '
        'or platform_machine == "s390x" or platform_machine == "ppc64le"'],
    ("torchvision", "0.29.0"): ["torch==2.14.0", "numpy"],
    # The release pip picks; 1.11.6 (the oldest vllm accepts) and 1.12.0 declare the same.
    ("mistral-common", "1.13.1"): ['numpy<2.4,>=1.25; python_version <= "3.12"', 'numpy>=1.25; python_version > "3.12"'],
    ("numba", "0.65.0"): ["numpy<2.5,>=1.22"],
    ("compressed-tensors", "0.17.0"): ["torch>=2.10.0", "transformers>=4.45.0"],
    ("xgrammar", "0.2.8"): ["torch>=1.10.0", "transformers>=4.38.0", "numpy"],
    ("transformers", "5.20.2"): ["huggingface-hub<3.0,>=1.31.0", "numpy>=1.17", "tokenizers<0.24.0,>=0.23.1",
                                 "safetensors>=0.8.0", "tqdm>=4.60"],
    ("trl", "1.16.0"): ["accelerate>=1.10.1", "datasets>=4.7.0", "numpy>=1.26.0", "transformers>=4.56.2"],
    ("peft", "0.21.2"): ["numpy>=1.17", "torch>=1.13.0", "transformers", "tqdm", "accelerate>=0.21.0", "safetensors"],
    ("accelerate", "1.15.0"): ["numpy>=1.17", "torch>=2.0.0", "safetensors>=0.4.3"],
    ("datasets", "5.2.0"): ["numpy>=1.17", "tqdm>=4.66.3"],
    ("tokenizers", "0.23.3"): [],
    ("gguf", "0.19.0"): ["numpy>=1.17", "tqdm>=4.27"],
    ("mlflow", "3.17.2"): ["numpy<3", "matplotlib<4"],
    ("matplotlib", "3.11.2"): ["numpy>=1.25"],
    ("dvc", "3.67.1"): ["tqdm<5,>=4.63.1"],
}
# What vllm 0.33.0 brings in at exact versions besides the pins of the constraints file.
VLLM_PINS = {"vllm": "0.33.0", "torchvision": "0.29.0", "mistral-common": "1.13.1", "numba": "0.65.0",
             "compressed-tensors": "0.17.0", "xgrammar": "0.2.8"}
# A GPU machine runs Linux on x86-64 with Python 3.11 (this machine's) or 3.12 (most CUDA images).
GPU_ENVIRONMENTS = [{**default_environment(), "python_version": v, "python_full_version": f"{v}.0",
                     "platform_machine": "x86_64", "sys_platform": "linux", "platform_system": "Linux"}
                    for v in ("3.11", "3.12")]


def constraint_pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def base_requirements() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, project_requirements(()))}


def pin_set(constraints_file: str) -> dict[str, str]:
    """Every exact release the install takes: pyproject's exact pins, the constraints file's, vllm's."""
    pins = {name: next(iter(r.specifier)).version for name, r in base_requirements().items()
            if len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="}
    pins.update(constraint_pins(REPO_ROOT / constraints_file))
    return pins | VLLM_PINS


def violations(pins: dict[str, str]) -> list[str]:
    found = []
    for (package, version), declared in DECLARED.items():
        if pins.get(package) != version:
            continue
        for line in declared:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            for environment in GPU_ENVIRONMENTS:
                if name in pins and (requirement.marker is None or requirement.marker.evaluate(environment)) \
                        and not requirement.specifier.contains(pins[name], prereleases=True):
                    found.append(f"{package} {version} requires {line}, the pin is {name}=={pins[name]} "
                                 f"(Python {environment['python_version']})")
    return sorted(set(found))


def test_gpu_pins_satisfy_every_declared_requirement():
    pins = pin_set(TARGETS["gpu"][1])
    assert pins["torch"] == "2.14.0" and pins["vllm"] == "0.33.0"
    assert all((name, pins[name]) in DECLARED for name in ("transformers", "trl", "peft", "accelerate", "datasets"))
    assert violations(pins) == []


def test_this_machines_pins_are_the_conflict_the_gpu_file_resolves():
    # The base pins with vLLM: exactly the three conflicts of the issue (torch, transformers, numpy).
    problems = violations(pin_set(TARGETS["cpu"][1]))
    assert {p.split(" the pin is ")[1].split("==")[0] for p in problems} == {"torch", "transformers", "numpy"}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_constraint_pins_fall_inside_pyproject_ranges(target):
    base = base_requirements()
    for name, version in constraint_pins(REPO_ROOT / TARGETS[target][1]).items():
        assert name in base, f"{TARGETS[target][1]} pins {name}, which is no base dependency"
        assert base[name].specifier.contains(version), f"{name}=={version} is outside pyproject's {base[name]}"


def test_this_machine_keeps_its_pins():
    installed = {name: Version(importlib.metadata.version(name)).public
                 for name in constraint_pins(REPO_ROOT / TARGETS["cpu"][1])}
    assert installed == constraint_pins(REPO_ROOT / TARGETS["cpu"][1])
    # Only the packages the constraints files pin are ranges in pyproject; the rest stay exact.
    ranged = {name for name, r in base_requirements().items() if not str(r.specifier).startswith("==")}
    assert ranged == set(constraint_pins(REPO_ROOT / TARGETS["cpu"][1])) == set(constraint_pins(REPO_ROOT / TARGETS["gpu"][1]))


def test_pip_still_has_what_the_metadata_only_run_replaces():
    from pip._internal.operations.prepare import RequirementPreparer
    from pip._internal.req.req_install import InstallRequirement
    from pip._internal.utils.direct_url_helpers import direct_url_from_link  # noqa: F401
    from pip._vendor.urllib3.response import HTTPResponse

    assert callable(RequirementPreparer._fetch_metadata_only)
    assert callable(RequirementPreparer._complete_partial_requirements)
    assert callable(InstallRequirement.get_dist) and callable(HTTPResponse.read)
    assert "gpu" in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _index_reachable() -> bool:
    import httpx

    try:
        return httpx.head("https://pypi.org/simple/pip/", timeout=20, follow_redirects=True).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_pip_resolves_the_gpu_install_reading_metadata_only():
    if not _index_reachable():
        pytest.skip("the public package index cannot be reached from here")
    result = resolve_target("gpu")
    print(f"\ngpu: {result.summary()}")  # shown with -s: the cost of the check
    assert result.ok, result.output[-4000:]
    for name, version in {"vllm": "0.33.0", "torch": "2.14.0", "transformers": "5.20.2", "numpy": "2.3.5",
                          "trl": "1.16.0", "peft": "0.21.2", "accelerate": "1.15.0"}.items():
        assert result.installs[name] == version
    # No wheel came down whole: metadata reads, index pages and the small sdists only.
    assert all(any(canonicalize_name(f).startswith(canonicalize_name(name)) for name in SDIST_ONLY)
               for f in result.full_downloads), result.full_downloads
    assert result.downloaded_bytes < 250_000_000
    # And the check fails on a conflict: this machine's transformers with vLLM.
    conflict = resolve(["vllm==0.33.0", "transformers==5.23.0"])
    assert not conflict.ok and "transformers" in conflict.output
