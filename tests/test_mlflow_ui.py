"""The MLflow UI in a real browser: arm runs written by looptool.tracking, drawn over rounds.

A temp store is filled through the real tracking functions, ``mlflow ui`` serves it on 127.0.0.1,
and headless Chromium (Debian's ``chromium``, driven by Playwright's driver only: no
``playwright install``) opens the chart view that ``make ui`` prints. The full-page screenshot lands
in ``build/test-artifacts/mlflow_chart_view.png``.

The address is the one ``make ui`` prints, unchanged: it filters the runs table to the arm runs
(``tags.`looptool.kind` = 'arm'``), which are linked to their pipeline run by a tag rather than
nested (MLflow 3.17 draws a nested run only once its parent is expanded by hand). Line charts of
metrics with a history use ``Step`` (= round) on the x axis.

Without chromium or the playwright package the test is skipped, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from looptool import tracking

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO_ROOT / "build" / "test-artifacts" / "mlflow_chart_view.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# On a closed network Chromium's calls to Google's hosts (sync, component updates, QUIC probes) are
# refused over and over; these flags keep it from making them.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXP = "ui-check"  # DVC_EXP_NAME: the arm runs are named "<arm> · ui-check"

# Literal scores per arm and round (0 = the model both arms start from): iterative climbs, static
# barely moves, base is flat.
SERIES = {
    "base": {r: {"heldout_unseen_overall": 0.30, "grpo_reward_mean": 0.0} for r in range(3)},
    "iterative": {0: {"heldout_unseen_overall": 0.30, "grpo_reward_mean": 0.10},
                  1: {"heldout_unseen_overall": 0.50, "grpo_reward_mean": 0.40},
                  2: {"heldout_unseen_overall": 0.70, "grpo_reward_mean": 0.60}},
    "static": {0: {"heldout_unseen_overall": 0.30, "grpo_reward_mean": 0.10},
               1: {"heldout_unseen_overall": 0.35, "grpo_reward_mean": 0.20},
               2: {"heldout_unseen_overall": 0.38, "grpo_reward_mean": 0.25}},
}


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; CI installs it (.ci/run)")
    pytest.skip(f"{what} is missing (apt-get install chromium; pip install -e '.[dev]'), and CI is unset")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temp store holding one stage run and the three arm runs; returns its tracking URI."""
    import mlflow

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("train:\n  steps: 4\n")
    monkeypatch.chdir(repo)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("LOOPTOOL_MLFLOW", "1")
    monkeypatch.setenv("DVC_EXP_NAME", EXP)
    monkeypatch.delenv("LOOPTOOL_PARENT_RUN_ID", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    with tracking.mlflow_run("train", arm="iterative", round="r1", params={"train": {"steps": 4}}) as run:
        run.log_metric("reward", 0.5, step=0)
    ids = tracking.log_round_series(SERIES)
    assert set(ids) == set(SERIES)
    yield uri
    mlflow.set_tracking_uri(None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_ui(store: str, tmp_path: Path):
    """``mlflow ui`` on a free port of 127.0.0.1, serving the temp store; yields its base URL."""
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    port = _free_port()
    log = (tmp_path / "mlflow-ui.log").open("w")
    cmd = [str(mlflow_cli) if mlflow_cli.exists() else "mlflow", "ui", "--backend-store-uri", store,
           "--default-artifact-root", (tmp_path / "mlartifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port)]
    # Its own process group: the server's workers go down with it.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow ui exited with {proc.returncode}:\n{(tmp_path / 'mlflow-ui.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow ui did not answer in 90 s:\n{(tmp_path / 'mlflow-ui.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _plotted(card) -> dict[str, dict]:
    """The chart's Plotly traces by name ({"x": [...], "y": [...]}) and its x-axis title under "".

    Plotly keeps what it drew on its element (``gd.data``, ``gd.layout``); MLflow adds a second,
    plain-line trace per run under the same name (for smoothing), so the marker trace is taken.
    """
    return card.locator(".js-plotly-plot").evaluate(
        """gd => {
            const out = {"": ((gd.layout.xaxis || {}).title || {}).text};
            for (const t of gd.data || []) {
                if (!(t.name in out) || String(t.mode).includes('markers')) out[t.name] = {x: t.x, y: t.y, mode: t.mode};
            }
            return out;
        }"""
    )


@pytest.fixture
def playwright_api():
    """Playwright's sync API (sync_playwright, expect), once chromium and the package are known to be here."""
    if not Path(CHROMIUM).exists():
        _missing("chromium")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("the playwright package")
    # expect() keeps its own 5 s default; on 2 busy cores the first render of the runs page took
    # longer than that once in a clean-clone CI run (the heading was still empty). The setting is
    # process-wide playwright state, so it is put back (None: playwright's default) after the test.
    expect.set_options(timeout=30_000)
    yield sync_playwright, expect
    expect.set_options(timeout=None)


@pytest.mark.timeout(300)  # about 35 s on 2 shared cores (mlflow ui start-up ~15 s, the browser ~15 s)
def test_chart_view_draws_iterative_and_static_over_rounds(playwright_api, mlflow_ui: str) -> None:
    sync_playwright, expect = playwright_api

    url = tracking.chart_view_url(mlflow_ui)
    assert "/runs?compareRunsMode=CHART&searchFilter=" in url, url
    arms = {arm: f"{arm} · {EXP}" for arm in SERIES}
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # A fresh context: an empty profile (no saved UI state from an earlier run).
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            expect(page.get_by_text("Training runs", exact=True)).to_be_visible()
            for name in arms.values():
                expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
            # The assistant side panel would cover part of the screenshot.
            close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
            if close.count() and close.first.is_visible():
                close.first.click()

            card = page.locator('[data-testid="experiment-view-compare-runs-card"]').filter(
                has=page.locator('h4[title="heldout_unseen_overall"]'))
            expect(card).to_have_count(1)
            expect(page.locator('[data-testid="experiment-view-compare-runs-card"]').filter(
                has=page.locator('h4[title="grpo_reward_mean"]'))).to_have_count(1)
            # A line chart over step (= round), with a legend entry per arm run.
            expect(card.locator("text.xtitle")).to_have_text("Step")
            for name in arms.values():
                expect(card.get_by_text(f"{name} (heldout_unseen_overall)", exact=True)).to_be_visible()
            expect(card.locator("g.trace.scatter g.points path.point").first).to_be_attached()
            page.wait_for_timeout(1000)  # the chart re-lays out once the side panel is closed
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # What the chart plots: per arm run, its metric at step = round 0, 1, 2.
            plotted = _plotted(card)
            assert plotted[""] == "Step", plotted
            for arm, name in arms.items():
                assert name in plotted, (name, sorted(plotted))
                assert plotted[name]["x"] == [0, 1, 2], plotted[name]
                assert plotted[name]["y"] == pytest.approx([SERIES[arm][r]["heldout_unseen_overall"] for r in range(3)])
                assert "lines" in plotted[name]["mode"]
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
