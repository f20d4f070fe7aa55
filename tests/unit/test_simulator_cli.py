"""``python -m simulator`` as a new user runs it: files need no waiting, and no line is printed twice."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

from simulator_support import MemorySink

from simulator.__main__ import _speed, build_parser, main
from simulator.fleet import generate_fleet
from simulator.progress import Progress, status_line
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_with_out_the_files_are_written_in_simulated_time_only(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Given two 10 s intervals to files, which used to take 20 s of wall time
    started = time.monotonic()
    code = main(["--vehicles", "5", "--ticks", "2", "--interval", "10", "--out", str(tmp_path)])
    # Then they are written at once
    assert code == 0
    assert time.monotonic() - started < 5
    assert "done: 2 ticks" in capsys.readouterr().out
    assert list(tmp_path.rglob("*.ndjson.gz"))


def test_with_out_a_speed_still_asks_for_the_wall_clock(tmp_path: Path) -> None:
    started = time.monotonic()
    code = main(
        ["--vehicles", "5", "--ticks", "2", "--interval", "0.3", "--speed", "1", "--out", str(tmp_path)]
    )
    assert code == 0
    assert time.monotonic() - started >= 0.6


def test_uploading_to_s3_keeps_real_time_by_default() -> None:
    assert _speed(build_parser().parse_args([])) == 1.0
    assert _speed(build_parser().parse_args(["--out", "x"])) == 0.0
    assert _speed(build_parser().parse_args(["--out", "x", "--speed", "60"])) == 60.0


def test_the_final_status_line_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--vehicles", "5", "--ticks", "2", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    final = [line for line in lines if line.startswith("sim ") and "| tick 2 |" in line]
    assert len(final) == 1, lines
    assert captured.out.splitlines()[-1].startswith("done: 2 ticks")


def test_a_log_gets_the_last_tick_s_status_once_though_the_end_forces_an_update() -> None:
    # Given a non-terminal stream (a log file) and a run whose last tick was just reported
    sim = FleetSimulation(
        generate_fleet(3, 1), BatchUploader(MemorySink(), 10, "run"), start=0, interval=10, seed=1
    )
    sim.step()
    log = io.StringIO()
    progress = Progress(stream=log, every_s=0)
    progress.update(sim)
    # When the run ends and forces a final update
    progress.update(sim, force=True)
    progress.done()
    # Then the status is in the log once
    assert log.getvalue().splitlines() == [status_line(sim)]
