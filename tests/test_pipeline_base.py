"""The real `dvc repro` of the base-model stage on the tiny model, in a temp repo (the whole
pipeline is tests/test_pipeline_e2e.py)."""

import json

from looptool.models import load_model_and_tokenizer
from pipeline import PipelineRepo


def test_dvc_repro_builds_base_model_then_has_nothing_to_do(tmp_path):
    repo = PipelineRepo.create(tmp_path / "repo", params={"base_model": {"source": "tiny-random"}})
    repo.dvc("repro", "prepare_base_model")
    base = repo.root / "models" / "base"
    assert json.loads((base / "looptool_model.json").read_text())["source"] == "tiny-random"
    model, tokenizer = load_model_and_tokenizer(base)
    assert model.config.num_hidden_layers == 2 and tokenizer.chat_template
    assert (repo.root / "dvc.lock").is_file()

    again = repo.dvc("repro", "prepare_base_model")
    assert "didn't change, skipping" in again.stdout + again.stderr or "up to date" in again.stdout + again.stderr
    status = repo.dvc("status", "prepare_base_model")
    assert "up to date" in status.stdout

    repo.update_params({"base_model": {"tiny": {"num_hidden_layers": 1}}})
    repo.dvc("repro", "prepare_base_model")
    model, _ = load_model_and_tokenizer(base)
    assert model.config.num_hidden_layers == 1
