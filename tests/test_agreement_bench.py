"""bench/agreement.py runs on any folder laid out like the development data: here a small made-up
set on a holistic 1–6 scale, which the benchmark must neither start at 0 nor fail on."""

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.support.essays import story

BENCH = Path(__file__).resolve().parent.parent / "bench" / "agreement.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, check=False
    )


def holistic_folder(folder: Path) -> Path:
    """Thirty essays whose two raters' 1–6 scores rise with their length."""
    rubric = {
        "prompt": "Write a story about a time you had to wait for something.",
        "criteria": [{"name": "Overall", "levels": {str(p): f"Writing at band {p}." for p in range(1, 7)}}],
    }
    (folder / "rubric.json").write_text(json.dumps(rubric), encoding="utf-8")
    with (folder / "essays.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["essay_id", "rater1", "rater2", "score", "essay"])
        for i in range(30):
            first = 1 + i // 6
            second = min(6, first + i % 2)
            writer.writerow([i, first, second, first + second, story(2 + i, offset=i)])
    return folder


def test_the_bench_reports_every_row_on_a_scale_that_does_not_start_at_zero(tmp_path):
    ran = run_bench("--data", str(holistic_folder(tmp_path)), "--sizes", "0,10", "--draws", "2")

    assert ran.returncode == 0, ran.stderr
    assert "teacher = rater1 (1–6)" in ran.stdout
    for row in ("| builtin (learnt) | 10 |", "| word count + calibration | 10 |", "| rater 1 vs rater 2 |"):
        assert row in ran.stdout
    assert "builtin grade   ρ = " in ran.stdout
    assert "essays/s CPU" in ran.stdout


def test_a_folder_without_the_data_is_one_sentence_and_exit_status_1(tmp_path):
    ran = run_bench("--data", str(tmp_path))

    assert ran.returncode == 1
    assert ran.stderr.strip() == (
        f"{tmp_path} has no essays.tsv or rubric.json: give --data a folder like ../shared/data/asap7."
    )
