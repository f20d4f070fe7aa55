"""``python -m simulator`` as a new user runs it: files need no waiting."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from simulator.__main__ import _speed, build_parser, main

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
