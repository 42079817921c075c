"""SFT and GRPO on the tiny random Llama: they run, merge, reload, resume, and refuse bad inputs early."""

import json
import shutil

import pytest
import torch
from transformers import TrainerCallback

from looptool.io import write_jsonl
from looptool.llm.policy import GenerationSettings
from looptool.models import load_model_and_tokenizer
from looptool.train.common import ResumableRun
from looptool.train.data import TrainingInputError
from looptool.train.grpo import run_grpo
from looptool.train.rewards import binary_tool_call_reward, partial_call_credit, partial_tool_call_reward
from looptool.train.sft import run_sft, sft_enabled
from looptool.schema import Call

TOOL = {"name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ROWS = [
    {"tools": [TOOL], "messages": [{"role": "user", "content": f"Weather in {city}?"}],
     "label": [{"name": "get_weather", "arguments": {"city": city}}]}
    for city in ("Paris", "Rome", "Oslo")
] + [{"tools": [TOOL], "messages": [{"role": "user", "content": "Hello"}], "label": "Hi! How can I help?"}]
SHORT = GenerationSettings(max_new_tokens=12)
LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
SFT = {"device": "cpu", "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1}
GRPO = {"device": "cpu", "max_steps": 2, "num_generations": 4, "per_device_train_batch_size": 4, 
        "learning_rate": 1e-4, "logging_steps": 1, "save_steps": 1, "beta": 0.01, "epsilon": 0.2, "epsilon_high": 0.28,
        "max_prompt_length": 1024}


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, ROWS)
    return path


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # rolling checkpoints go to ./checkpoints


def test_reward_functions_follow_trls_convention():
    label = json.dumps([{"name": "f", "arguments": {"x": 1}}])
    out = ['<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>', "no call", "<tool_call>{bad"]
    assert binary_tool_call_reward(completions=out, label=[label] * 3) == [1.0, 0.0, 0.0]
    assert binary_tool_call_reward(completions=[[{"role": "assistant", "content": out[0]}]], label=[label]) == [1.0]
    two = [Call("f", {"x": 1}), Call("g", {})]
    assert partial_call_credit(out[0], two) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert partial_tool_call_reward(completions=["text"], label=[json.dumps("a reply")]) == [1.0]


def test_rewards_read_the_end_of_each_completion_from_its_token_ids():
    # TRL passes completion_ids; a completion that did not end on a stop token was cut by the limit.
    text = json.dumps("a reply")
    rewards = binary_tool_call_reward(completions=["Sure, here", "Sure, here."], label=[text, text],
                                      completion_ids=[[5, 6, 7], [5, 6, 2]], stop_ids=[2])
    assert rewards == [0.0, 1.0]
    assert partial_tool_call_reward(completions=["cut"], label=[text], completion_ids=[[5]], stop_ids=[2]) == [0.0]


def test_sft_auto_switch():
    assert sft_enabled("auto", "embedded") and sft_enabled("auto", "tiny-random")
    assert not sft_enabled("auto", "/models/qwen3-8b") and sft_enabled(True, "/x")
    with pytest.raises(ValueError):
        sft_enabled("yes", "embedded")


def test_sft_then_grpo_produce_loadable_models(tiny_model_dir, data, tmp_path):
    sft = run_sft(tiny_model_dir, data, tmp_path / "sft", SFT, LORA)
    assert sft["steps"] == 2 and sft["trained_on"] == 4
    result = run_grpo(tmp_path / "sft", data, tmp_path / "r1", GRPO, LORA, generation=SHORT)
    assert result["steps"] == 2
    rewards = [h for h in result["history"] if "reward" in h]
    assert len(rewards) == 2 and all({"reward_std", "frac_reward_zero_std", "kl", "entropy"} <= set(h) for h in rewards)
    assert result["completions"] and {"prompt_tail", "completion", "reward"} <= set(result["completions"][0])
    model, tokenizer = load_model_and_tokenizer(tmp_path / "r1")
    assert not any("lora" in name for name, _ in model.named_parameters())  # adapter merged away
    inputs = tokenizer("hello", return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] >= inputs["input_ids"].shape[1] + 1
    assert not (tmp_path / "checkpoints" / "grpo").exists()  # rolling checkpoints removed after success


def test_bf16_training_is_autocast_over_float32_weights(tiny_model_dir, data, tmp_path):
    from looptool.models import ComputeConfig

    sft = run_sft(tiny_model_dir, data, tmp_path / "sft", SFT, LORA, compute=ComputeConfig(precision="bfloat16"))
    assert sft["precision"] == "bfloat16" and sft["tokens_per_epoch"] > 0
    model, _ = load_model_and_tokenizer(tmp_path / "sft")
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # checkpoints stay float32
    base, _ = load_model_and_tokenizer(tiny_model_dir)
    moved = [n for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters()) if not torch.equal(p, q)]
    assert moved  # the merged adapter changed the weights


def test_weights_dtype_loads_and_saves_checkpoints_in_bf16(tiny_model_dir, data, tmp_path):
    from looptool.models import ComputeConfig

    compute = ComputeConfig(precision="float32", weights="bfloat16")
    sft = run_sft(tiny_model_dir, data, tmp_path / "sft", SFT, LORA, compute=compute)
    assert sft["weights"] == "bfloat16"
    config = json.loads((tmp_path / "sft" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"  # what from_pretrained would restore
    result = run_grpo(tmp_path / "sft", data, tmp_path / "r1", GRPO, LORA, generation=SHORT, compute=compute)
    assert result["steps"] == 2
    model, _ = load_model_and_tokenizer(tmp_path / "r1", dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    # The default on the CPU keeps float32, bf16 autocast or not; on CUDA auto follows the precision.
    assert ComputeConfig(precision="bfloat16").resolve_weights("cpu") == "float32"
    assert ComputeConfig(precision="bfloat16").resolve_weights("cuda") == "bfloat16"
    assert ComputeConfig(precision="float32").resolve_weights("cuda") == "float32"


class StopAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt("simulated kill after the first checkpoint")


def test_killed_grpo_resumes_from_its_last_checkpoint(tiny_model_dir, data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_grpo(tiny_model_dir, data, tmp_path / "r1", GRPO, LORA, callbacks=[StopAfterFirstSave()], generation=SHORT)
    assert not (tmp_path / "r1").exists()  # nothing half-written in place of the output
    assert list((tmp_path / "checkpoints" / "grpo").glob("checkpoint-1"))
    result = run_grpo(tiny_model_dir, data, tmp_path / "r1", GRPO, LORA, generation=SHORT)
    logged_steps = [h["step"] for h in result["history"] if "reward" in h]
    assert logged_steps == [2]  # step 1 came from the checkpoint, only step 2 ran again


def test_checkpoints_of_other_inputs_are_not_reused(tmp_path):
    first = ResumableRun("x", {"data": [1]}, root=tmp_path)
    (first.dir / "checkpoint-3").mkdir()
    assert ResumableRun("x", {"data": [1]}, root=tmp_path).last_checkpoint().endswith("checkpoint-3")
    assert ResumableRun("x", {"data": [2]}, root=tmp_path).last_checkpoint() is None


def test_bad_inputs_fail_before_training(tiny_model_dir, data, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(ROWS[0]) + "\n{}\n")
    with pytest.raises(TrainingInputError, match=r"broken\.jsonl:2: sample is missing 'tools'"):
        run_grpo(tiny_model_dir, broken, tmp_path / "out", GRPO, LORA)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(TrainingInputError, match=r"garbled\.jsonl:2: invalid JSON"):
        run_sft(tiny_model_dir, garbled, tmp_path / "out", SFT, LORA)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TrainingInputError, match="holds no samples"):
        run_grpo(tiny_model_dir, empty, tmp_path / "out", GRPO, LORA)
    with pytest.raises(TrainingInputError, match="previous round model .* is missing"):
        run_grpo(tmp_path / "models" / "r0", data, tmp_path / "out", GRPO, LORA)
    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, no_template)
    (no_template / "chat_template.jinja").unlink()
    with pytest.raises(TrainingInputError, match="no chat template"):
        run_grpo(no_template, data, tmp_path / "out", GRPO, LORA)
    with pytest.raises(ValueError, match=r"GRPOConfig has no field\(s\) \['num_generation'\]"):
        run_grpo(tiny_model_dir, data, tmp_path / "out", {**GRPO, "num_generation": 4}, LORA)
    with pytest.raises(ValueError, match="compute.precision"):
        run_sft(tiny_model_dir, data, tmp_path / "out", {**SFT, "bf16": True}, LORA)
    assert not (tmp_path / "out").exists() and not (tmp_path / "checkpoints").exists()


def test_a_failure_after_training_keeps_the_checkpoints_and_the_rerun_trains_nothing(tiny_model_dir, data, tmp_path,
                                                                                     monkeypatch):
    # Issue 14 item 10: the rolling checkpoints go only after the stage wrote everything, so a failure
    # while writing metrics, the curve or MLflow costs no retraining.
    import yaml

    from stages import train as train_stage

    monkeypatch.setenv("LOOPTOOL_MLFLOW", "0")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 0, "train": GRPO, "lora": LORA, "generation": {"max_new_tokens": 12},
                                      "compute": {"precision": "auto"},
                                      "rounds": {"r1": {"data": str(data), "from": str(tiny_model_dir)}}}))
    argv = ["--params", str(params), "--arm", "iterative", "--round", "r1", "--model-in", str(tiny_model_dir),
            "--data", str(data), "--out", str(tmp_path / "r1"), "--metrics", str(tmp_path / "train.json"),
            "--curve", str(tmp_path / "curve.json")]
    real_write_json = train_stage.write_json

    def failing_write_json(path, obj):
        if str(path).endswith("train.json"):
            raise OSError("disk full (simulated)")
        real_write_json(path, obj)

    monkeypatch.setattr(train_stage, "write_json", failing_write_json)
    with pytest.raises(OSError, match="simulated"):
        train_stage.main(argv)
    checkpoints = tmp_path / "checkpoints" / "train" / "iterative" / "r1"
    assert list(checkpoints.glob("checkpoint-2"))
    monkeypatch.setattr(train_stage, "write_json", real_write_json)
    shutil.rmtree(tmp_path / "r1")  # DVC removes a stage's outputs before running it again
    train_stage.main(argv)
    summary = json.loads((tmp_path / "train.json").read_text())
    # Restored from the final checkpoint: no step past max_steps, and the curve is the first run's.
    assert summary["steps"] == 2 and [h["step"] for h in json.loads((tmp_path / "curve.json").read_text())] == [1, 2]
    assert not checkpoints.exists()


def test_merged_rollouts_leave_the_adapter_and_base_weights_unchanged(tiny_model_dir, tmp_path):
    # The rollouts decode with the adapter merged (merged_rollout_trainer); the unmerge after them
    # must give back the exact training weights, or each rollout would fold the adapter in once more.
    from datasets import Dataset
    from trl import GRPOConfig

    from looptool.train.common import LoraParams, device_settings, load_for_training
    from looptool.train.grpo import merged_rollout_trainer
    from looptool.train.rewards import binary_tool_call_reward

    model, tokenizer = load_for_training(tiny_model_dir, "model")
    config = GRPOConfig(output_dir=str(tmp_path / "out"), report_to="none", max_steps=1, num_generations=2,
                        per_device_train_batch_size=2, max_completion_length=4, **device_settings("cpu", "float32"))
    trainer = merged_rollout_trainer()(
        model=model, reward_funcs=[binary_tool_call_reward], args=config,
        train_dataset=Dataset.from_list([{"prompt": "hi", "label": "[]"}] * 2), processing_class=tokenizer,
        peft_config=LoraParams(**LORA).to_peft(),
    )
    peft_model = trainer.model
    torch.manual_seed(0)
    with torch.no_grad():  # PEFT starts lora_B at zero, where merging changes nothing: give it a value
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    before = {k: v.detach().clone() for k, v in peft_model.state_dict().items()}
    lora_layers = [m for m in peft_model.modules() if hasattr(m, "merged") and hasattr(m, "lora_A")]
    assert lora_layers
    seen = []
    real_generate = peft_model.generate

    def generate(*args, **kwargs):
        seen.append((all(m.merged for m in lora_layers),
                     any(not torch.equal(v, before[k]) for k, v in peft_model.state_dict().items())))
        return real_generate(*args, **kwargs)

    peft_model.generate = generate
    prompt_ids = [tokenizer("hello there")["input_ids"]] * 2
    for _ in range(2):  # a second cycle would double-merge if the first one left the adapter folded in
        trainer._generate_single_turn(prompt_ids, None, {}, 2)
    assert seen == [(True, True), (True, True)]  # generation ran merged, on changed weights
    assert not any(m.merged for m in lora_layers)
    after = peft_model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.allclose(after[key], value, rtol=0, atol=1e-6), key
