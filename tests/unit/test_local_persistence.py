"""The snapshot file format, the request gate, the stack's pid file and the key reducers, without moto."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.local import ownership
from fleetota_core.local.persistence import _dispatch_table
from fleetota_core.local.server import SnapshotGate
from fleetota_core.local.snapshot_file import (
    SNAPSHOT_NAME,
    SnapshotUnreadable,
    decode,
    encode,
    remove_snapshots,
    write_atomic,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_an_encoded_snapshot_decodes_to_its_payload():
    header, payload = decode(encode(b"state", "moto 1", 12.5), "moto 1")
    assert payload == b"state"
    assert (header.format_version, header.created, header.size) == ("moto 1", 12.5, 5)


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04 something else", "bad magic"),
        (encode(b"state" * 100, "moto 1", 0)[:-7], "truncated"),
        (encode(b"state", "moto 1", 0)[:-5] + b"STATE", "checksum"),
        (encode(b"state", "moto 0.9", 0), "written by moto 0.9"),
    ],
)
def test_a_damaged_or_foreign_snapshot_is_refused_before_unpickling(blob: bytes, why: str):
    with pytest.raises(SnapshotUnreadable, match=why):
        decode(blob, "moto 1")


def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "state" / SNAPSHOT_NAME
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == [SNAPSHOT_NAME]


def test_remove_snapshots_deletes_the_snapshot_leftovers_and_set_aside_copies_only(tmp_path: Path):
    for name in (SNAPSHOT_NAME, f".{SNAPSHOT_NAME}.x.tmp", f"{SNAPSHOT_NAME}.unusable-1", "simulator.log"):
        (tmp_path / name).write_bytes(b"x")
    assert len(remove_snapshots(tmp_path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["simulator.log"]


def _slow_app(started: threading.Event, release: threading.Event) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        started.set()
        release.wait(5)
        return [b"done"]

    return app


def test_a_paused_gate_waits_for_requests_in_flight_and_holds_new_ones_until_resumed():
    started, release = threading.Event(), threading.Event()
    gate = SnapshotGate(_slow_app(started, release))
    environ = {"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}
    first = threading.Thread(target=gate, args=(environ, None))
    first.start()
    started.wait(5)
    paused = threading.Event()

    def snapshot() -> None:
        with gate.paused():
            paused.set()
            time.sleep(0.2)

    snapper = threading.Thread(target=snapshot)
    snapper.start()
    time.sleep(0.1)
    assert not paused.is_set()  # the request in flight finishes first
    release.set()
    assert paused.wait(5)
    started.clear()
    second = threading.Thread(target=gate, args=(environ, None))
    second.start()
    assert not started.wait(0.1)  # held at the door while the snapshot runs
    snapper.join()
    assert started.wait(5)
    for thread in (first, second):
        thread.join(5)


def test_reads_leave_the_gate_clean_and_writes_mark_it_dirty():
    gate = SnapshotGate(lambda environ, start_response: [b""])
    gate.dirty = False
    gate({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query"}, None)
    gate({"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket/key"}, None)
    assert not gate.dirty
    gate({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key"}, None)
    assert gate.dirty


def test_long_polls_pass_a_paused_gate():
    gate = SnapshotGate(lambda environ, start_response: [b"messages"])
    with gate.paused():
        assert gate({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, None)


def test_private_keys_and_locks_pickle_to_the_same_key_and_fresh_locks():
    key = ec.generate_private_key(ec.SECP256R1())
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump({"key": key, "lock": threading.RLock(), "condition": threading.Condition()})
    restored = pickle.loads(buffer.getvalue())
    assert restored["key"].private_numbers() == key.private_numbers()
    assert restored["lock"].acquire(blocking=False)
    with restored["condition"]:
        pass


def test_the_pid_file_names_a_live_owner_and_ignores_an_exited_one(tmp_path: Path):
    ownership.claim(tmp_path, "http://127.0.0.1:1")
    owner = ownership.read_owner(tmp_path)
    assert owner is not None and owner.pid == os.getpid()
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    (tmp_path / ownership.PID_NAME).write_text(f'{{"pid": {exited.pid}, "endpoint": "x"}}')
    assert ownership.read_owner(tmp_path) is None
    assert ownership.stop_owner(tmp_path) is None


def test_an_unreaped_child_counts_as_exited():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while ownership.process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ownership.process_alive(child.pid)
    child.wait()
