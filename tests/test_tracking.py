"""MLflow layout: a pipeline run per invocation, stage runs nested under it, arm runs stepped by round."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptool import tracking


def _fake_process(proc: Path, pid: int, ppid: int, argv: list[str], comm: str = "python", start: int = 1000) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    folder.joinpath("cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    # Fields after the command name: state, ppid, then 17 more up to starttime (field 22 of stat).
    rest = ["S", str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 5
    folder.joinpath("stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")


def test_invocation_is_the_nearest_dvc_ancestor(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _fake_process(proc, 50, 1, ["/bin/bash", "-l"])
    _fake_process(proc, 100, 50, ["/repo/.venv/bin/python", "/repo/.venv/bin/dvc", "exp", "run"], start=4242)
    # A command name with a space and a parenthesis: stat must be split after the last ")".
    _fake_process(proc, 200, 100, ["/bin/sh", "-c", "python -m stages.train"], comm="sh (x) y")
    _fake_process(proc, 300, 200, ["python", "-m", "stages.train", "--arm", "iterative"])
    assert tracking.dvc_invocation(300, proc) == "100-4242"
    # `python -m dvc` is DVC too.
    _fake_process(proc, 400, 50, ["python", "-m", "dvc", "repro"], start=77)
    _fake_process(proc, 401, 400, ["python", "-m", "stages.report"])
    assert tracking.dvc_invocation(401, proc) == "400-77"
    # A stage script started by hand has no DVC ancestor; a vanished process reads as none too.
    _fake_process(proc, 500, 50, ["python", "-m", "stages.report", "--root", "dvc"])
    assert tracking.dvc_invocation(500, proc) is None
    assert tracking.dvc_invocation(999, proc) is None


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh MLflow store and a repository directory holding params.yaml, as cwd."""
    import mlflow

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("train:\n  steps: 4\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LOOPTOOL_MLFLOW", "1")
    monkeypatch.setenv("DVC_EXP_NAME", "no-edde")
    monkeypatch.delenv("LOOPTOOL_PARENT_RUN_ID", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    yield mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"), repo
    mlflow.set_tracking_uri(None)


def _runs(client, kind: str):
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`looptool.kind` = '{kind}'")


def test_stages_of_one_invocation_share_a_parent_and_arm_runs_are_stepped_by_round(store) -> None:
    client, repo = store
    with tracking.mlflow_run("train", arm="iterative", round="r1", params={"train": {"steps": 4}}) as run:
        run.log_metric("reward", 0.5)
    with tracking.mlflow_run("probe", arm="iterative", round="r1"):
        pass
    [parent] = _runs(client, "pipeline")
    assert parent.data.tags["dvc_experiment"] == "no-edde"
    assert parent.data.tags["params_hash"] == tracking.params_hash("train:\n  steps: 4\n")
    assert parent.data.params["train.steps"] == "4"  # the full params.yaml, on the parent
    stages = _runs(client, "stage")
    assert sorted(r.info.run_name for r in stages) == ["probe/iterative/r1", "train/iterative/r1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in stages} == {parent.info.run_id}
    # The UI opens the experiment on its runs, not on the GenAI overview.
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    series = {"iterative": {0: {"heldout_unseen_overall": 0.2}, 1: {"heldout_unseen_overall": 0.3},
                            2: {"heldout_unseen_overall": 0.45, "grpo_reward_mean": 0.25}},
              "static": {0: {"heldout_unseen_overall": 0.2}, 2: {"heldout_unseen_overall": 0.35}}}
    tracking.log_round_series(series)
    tracking.log_round_series(series)  # the report re-run: replaces its arm runs, no doubled points
    arms = {r.data.tags["arm"]: r for r in _runs(client, "arm")}
    assert set(arms) == {"iterative", "static"}
    assert arms["iterative"].info.run_name == "iterative · no-edde"
    # Linked to the pipeline run by a tag, not nested (the UI would draw them only once expanded).
    assert {r.data.tags[tracking.PIPELINE_RUN_TAG] for r in arms.values()} == {parent.info.run_id}
    assert not any("mlflow.parentRunId" in r.data.tags for r in arms.values())
    history = client.get_metric_history(arms["iterative"].info.run_id, "heldout_unseen_overall")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.2), (1, 0.3), (2, 0.45)]
    assert [(m.step, m.value) for m in client.get_metric_history(arms["static"].info.run_id, "heldout_unseen_overall")
            if m.step == 2] == [(2, 0.35)]

    # Other params: another invocation, another parent.
    (repo / "params.yaml").write_text("train:\n  steps: 8\n")
    with tracking.mlflow_run("train", arm="iterative", round="r1"):
        pass
    assert len(_runs(client, "pipeline")) == 2


def test_non_main_ranks_log_nothing(store, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = store
    monkeypatch.setenv("RANK", "1")
    with tracking.mlflow_run("sft") as run:
        assert run is None
    assert tracking.log_round_series({"iterative": {1: {"x": 1.0}}}) == {}
    assert client.get_experiment_by_name(tracking.EXPERIMENT) is None
