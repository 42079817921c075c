"""params.yaml helpers: sections and per-round training overrides."""

import pytest

from looptool.params import ParamsError, round_train_config, section

PARAMS = {
    "train": {"max_steps": 5, "learning_rate": 2e-5},
    "rounds": {"r1": {"data": "a.jsonl"}, "r2": {"data": "b.jsonl", "train": {"max_steps": 20}}},
}


def test_round_overrides_apply_to_their_round_only():
    assert round_train_config(PARAMS, "r1") == {"max_steps": 5, "learning_rate": 2e-5}
    assert round_train_config(PARAMS, "r2") == {"max_steps": 20, "learning_rate": 2e-5}
    assert PARAMS["train"]["max_steps"] == 5  # the shared section is not modified


def test_round_errors_name_the_problem():
    with pytest.raises(ParamsError, match="no round 'r3'"):
        round_train_config(PARAMS, "r3")
    with pytest.raises(ParamsError, match="rounds.r1.train must be a mapping"):
        round_train_config({**PARAMS, "rounds": {"r1": {"train": 3}}}, "r1")
    with pytest.raises(ParamsError, match="no 'lora' section"):
        section(PARAMS, "lora")
