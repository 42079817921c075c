"""End to end: the real `dvc repro` of the stages that exist, on the tiny model, in a temp repo."""

import json

from looptool.models import load_model_and_tokenizer
from pipeline import PipelineRepo


def test_dvc_repro_builds_base_model_then_has_nothing_to_do(tmp_path):
    repo = PipelineRepo.create(tmp_path / "repo", params={"base_model": {"source": "tiny-random"}})
    repo.dvc("repro")
    base = repo.root / "models" / "base"
    assert json.loads((base / "looptool_model.json").read_text())["source"] == "tiny-random"
    model, tokenizer = load_model_and_tokenizer(base)
    assert model.config.num_hidden_layers == 2 and tokenizer.chat_template
    assert (repo.root / "dvc.lock").is_file()

    again = repo.dvc("repro")
    assert "didn't change, skipping" in again.stdout + again.stderr or "up to date" in again.stdout + again.stderr
    status = repo.dvc("status")
    assert "up to date" in status.stdout

    repo.update_params({"base_model": {"tiny": {"num_hidden_layers": 1}}})
    repo.dvc("repro")
    model, _ = load_model_and_tokenizer(base)
    assert model.config.num_hidden_layers == 1
