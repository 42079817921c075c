"""The per-stage timing of `make run`, on literal DVC output."""

from looptool.stage_times import format_durations, stage_durations


def test_each_stage_lasts_until_the_next_starts_and_the_last_until_the_end():
    events = [(0.0, "Verifying data sources in stage: 'x'\n"), (1.0, "Running stage 'synth_apis':\n"),
              (2.5, "> python -m stages.synth_apis\n"), (4.0, "Running stage 'train@iterative-r1':\n"),
              (9.0, "Stage 'eval_base' didn't change, skipping\n"), (10.0, "Running stage 'report':\n")]
    assert stage_durations(events, end=12.5) == [("synth_apis", 3.0), ("train@iterative-r1", 6.0), ("report", 2.5)]
    assert stage_durations([(0.0, "nothing ran\n")], end=1.0) == []


def test_table_ends_with_the_total_in_seconds_and_minutes():
    text = format_durations([("sft", 90.0)], total=120.0)
    assert text.splitlines()[-1].split() == ["total", "120.0", "2.0"]
    assert text.splitlines()[1].split() == ["sft", "90.0", "1.5"]
