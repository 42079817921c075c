"""Every training section the README shows builds TRL's config (issue 16 item 4).

The README's YAML blocks are what users copy into params.yaml. Each ``train`` / ``sft`` section in
them (top level, or a round's ``rounds.<key>.train`` override) goes through the same parsing as the
stages (LoopTool's own keys split off, the rest TRL's) and then into ``GRPOConfig`` / ``SFTConfig``
themselves, so a misspelt or removed TRL key fails here rather than on a user's GPU machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from looptool.train.grpo import GrpoStageConfig
from looptool.train.sft import SftStageConfig

README = Path(__file__).resolve().parents[1] / "README.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def readme_sections() -> list[tuple[str, str, dict]]:
    """(where, kind, values) of every ``train`` / ``sft`` section of the README's YAML blocks."""
    found = []
    for number, block in enumerate(YAML_BLOCK.findall(README.read_text(encoding="utf-8")), start=1):
        params = yaml.safe_load(block) or {}
        for kind in ("train", "sft"):
            if isinstance(params.get(kind), dict):
                found.append((f"block {number} {kind}", kind, params[kind]))
        for key, spec in (params.get("rounds") or {}).items():
            if isinstance(spec, dict) and isinstance(spec.get("train"), dict):
                found.append((f"block {number} rounds.{key}.train", "train", spec["train"]))
    return found


def test_the_readme_has_training_sections() -> None:
    where = [w for w, _, _ in readme_sections()]
    # The GPU example (vLLM rollouts) and the third-round override, at least.
    assert any(w.endswith(" train") for w in where) and any("rounds.r3.train" in w for w in where)


@pytest.mark.parametrize("where, kind, values", [pytest.param(*s, id=s[0]) for s in readme_sections()])
def test_readme_section_builds_trls_config(where: str, kind: str, values: dict, tmp_path: Path) -> None:
    import trl

    if kind == "train":
        section = GrpoStageConfig.from_params_mapping(values, where)
        config_cls = trl.GRPOConfig
    else:
        section = SftStageConfig.from_params_mapping(values, where)
        config_cls = trl.SFTConfig
    # The stages add these themselves; use_cpu keeps a CUDA example constructible on this machine.
    config = config_cls(**section.trl, output_dir=str(tmp_path), report_to="none", use_cpu=True)
    for key, value in section.trl.items():
        assert getattr(config, key) == value, f"{where}: {key}"


def test_an_unknown_trl_key_is_caught() -> None:
    from looptool.params import ParamsError

    with pytest.raises(ParamsError, match="vllm_moed"):
        GrpoStageConfig.from_params_mapping({"use_vllm": True, "vllm_moed": "server"}, "README")
