"""The training stages under a two-process launch (issue 16 item 1): only the main process merges,
saves, writes metrics, deletes checkpoints and logs to MLflow; the other rank waits for it.

``accelerate launch --cpu --num_processes 2`` starts ONE process in accelerate 1.15 (its CPU path
goes multi-process only through mpirun with a hostfile), so the test launches with ``--multi_gpu``
on a machine without CUDA (``CUDA_VISIBLE_DEVICES=""``): torch.distributed.run then starts two
processes and the trainer joins them in a gloo group (DistributedType.MULTI_CPU). A hook loaded in
every process (``sitecustomize``) logs each ``os.replace`` and ``shutil.rmtree`` with its rank, so a
file write or deletion by rank 1 fails the test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_train import ROWS

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.multiproc

HOOK = '''
import os, shutil
_log = os.environ.get("LOOPTOOL_TEST_FS_LOG")
_rank = os.environ.get("RANK")
if _log and _rank is not None:
    def _note(op, path):
        with open(_log, "a") as handle:
            handle.write(f"{_rank}\\t{op}\\t{os.path.abspath(os.fspath(path))}\\n")
    _note("start", os.getcwd())
    _replace, _rmtree = os.replace, shutil.rmtree
    def replace(src, dst, *args, **kwargs):
        _note("replace", dst)
        return _replace(src, dst, *args, **kwargs)
    def rmtree(path, *args, **kwargs):
        _note("rmtree", path)
        return _rmtree(path, *args, **kwargs)
    os.replace, shutil.rmtree = replace, rmtree
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(tmp_path: Path, env: dict[str, str], *stage: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", *stage]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(stage[:1])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def test_sft_and_a_grpo_round_under_two_processes(tiny_model_dir, tmp_path):
    from looptool.models import load_model_and_tokenizer
    from looptool.io import write_jsonl

    data = tmp_path / "train.jsonl"
    write_jsonl(data, ROWS)
    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "seed": 0, "base_model": {"source": "tiny-random"}, "lora": lora, "compute": {"precision": "float32"},
        "generation": {"max_new_tokens": 8},
        "sft": {"enabled": True, "device": "cpu", "max_steps": 1, "per_device_train_batch_size": 2,
                "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1},
        "train": {"device": "cpu", "max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2,
                  "learning_rate": 1e-4, "logging_steps": 1, "save_steps": 1, "beta": 0.01,
                  "max_prompt_length": 1024},
        "rounds": {"r1": {"data": str(data), "from": "models/sft"}},
    }))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    fs_log = tmp_path / "fs.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO_ROOT)]), "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1", "LOOPTOOL_TEST_FS_LOG": str(fs_log), "LOOPTOOL_MLFLOW": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "LOOPTOOL_MLFLOW_EXPERIMENT": "multiproc"}
    env.pop("LOOPTOOL_PARENT_RUN_ID", None)

    sft = _launch(tmp_path, env, "stages.sft", "--base", str(tiny_model_dir), "--data", str(data),
                  "--out", "models/sft", "--metrics", "eval/sft/train.json")
    train = _launch(tmp_path, env, "stages.train", "--arm", "iterative", "--round", "r1", "--model-in", "models/sft",
                    "--data", str(data), "--out", "models/iterative/r1", "--metrics", "eval/train/r1.json",
                    "--curve", "eval/train/r1_curve.json")

    log = [line.split("\t") for line in fs_log.read_text().splitlines()]
    assert sorted(rank for rank, op, _ in log if op == "start") == ["0", "0", "1", "1"]  # two ranks per stage
    ours = [str(tmp_path / p) for p in ("models", "eval", "checkpoints")]
    by_rank1 = [(op, path) for rank, op, path in log if rank != "0" and path.startswith(tuple(ours))]
    assert by_rank1 == [], f"rank 1 wrote or deleted shared outputs: {by_rank1}"
    assert [line[:4] for line in sft.stdout.splitlines() if line.startswith("sft: ")] == ["sft:"]
    assert [line[:6] for line in train.stdout.splitlines() if line.startswith("train ")] == ["train "]

    for model_dir, source in (("models/sft", "sft"), ("models/iterative/r1", "grpo")):
        model, _ = load_model_and_tokenizer(tmp_path / model_dir)
        assert not any("lora" in name for name, _ in model.named_parameters())
        assert json.loads((tmp_path / model_dir / "looptool_model.json").read_text())["source"] == source
    sft_metrics = json.loads((tmp_path / "eval/sft/train.json").read_text())
    train_metrics = json.loads((tmp_path / "eval/train/r1.json").read_text())
    assert sft_metrics["steps"] == 1 and train_metrics["steps"] == 1
    assert [h["step"] for h in json.loads((tmp_path / "eval/train/r1_curve.json").read_text())] == [1]
    assert not (tmp_path / "checkpoints" / "sft").exists()
    assert not (tmp_path / "checkpoints" / "train" / "iterative" / "r1").exists()

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("multiproc")
    stages = [r.data.tags.get("stage") for r in client.search_runs([experiment.experiment_id])
              if r.data.tags.get("stage")]
    assert sorted(stages) == ["sft", "train"]  # one run per stage: rank 1 logged nothing
