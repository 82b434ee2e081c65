"""backend.outputs, the one home of the output rules, tested directly (fast, no command run): what counts as eo-ssl's,
inputs never overwritten, no clobber at the rename (also with --overwrite), stale temporaries of dead processes swept
and live ones respected, the user's umask, a full disk recognised in the forms the libraries report it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from backend import disk, output_paths, outputs
from backend.errors import EoSslError
from backend.outputs import Output


def dead_pid() -> int:
    """The id of a process that has finished (and been reaped): no process has it right after."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def code_of(fn) -> str:  # noqa: ANN001
    with pytest.raises(EoSslError) as info:
        fn()
    return info.value.code


def test_what_counts_as_eo_ssl_output(tmp_path):
    ours = tmp_path / "store"
    ours.mkdir()
    outputs.write_marker(ours, "chipstore", ["manifest.json"])
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "manifest.json").write_text(json.dumps({"format": "eo-ssl-chipstore"}))
    user = tmp_path / "documents"
    user.mkdir()
    (user / "manifest.json").write_text(json.dumps({"format": "something else"}))
    tagged, plain = tmp_path / "map.tif", tmp_path / "photo.tif"
    for path, tags in ((tagged, {"EO_SSL_PREDICT": "{}"}), (plain, {})):
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, 2, 2), np.uint8))
            dst.update_tags(**tags)
    qml_ours, qml_user = tmp_path / "a.qml", tmp_path / "b.qml"
    qml_ours.write_text(f"<!DOCTYPE qgis>\n{outputs.QML_MARK}\n<qgis/>\n")
    qml_user.write_text("<!DOCTYPE qgis>\n<qgis/>\n")
    (tmp_path / "notes.txt").write_text("mine")
    assert [outputs.is_eo_ssl_output(p) for p in (ours, legacy, tagged, qml_ours)] == [True] * 4
    assert [outputs.is_eo_ssl_output(p) for p in (user, plain, qml_user, tmp_path / "notes.txt",
                                                   tmp_path / "absent")] == [False] * 5


def test_output_is_input_is_holds_or_inside(tmp_path):
    data = tmp_path / "data"
    (data / "s2").mkdir(parents=True)
    scene = data / "s2" / "scene.tif"
    scene.write_bytes(b"x")
    inputs = [("--s2", str(data / "s2"))]
    for out in (data / "s2", data, data / "s2" / "store"):  # is, holds, inside
        assert code_of(lambda o=out: output_paths.refuse_output_in_inputs([("--out", o)], inputs)) == "output_is_input"
    assert code_of(lambda: output_paths.refuse_output_in_inputs([("--out", scene)], [("--s2", str(scene))])) \
        == "output_is_input"
    # beside an input folder, and inputs that are not paths ('random'), are fine
    output_paths.refuse_output_in_inputs([("--out", tmp_path / "store")], [*inputs, ("--init", "random")])
    # a symbolic link to an input is the input
    link = tmp_path / "link.tif"
    link.symlink_to(scene)
    assert code_of(lambda: output_paths.refuse_output_in_inputs([("--out", link)], [("--s2", str(scene))])) \
        == "output_is_input"


def test_existing_output_rules(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    outputs.write_marker(store, "chipstore", ["manifest.json", "*.npy"])
    (store / "s2.npy").write_bytes(b"x")
    assert code_of(lambda: Output(store, kind="chipstore", folder=True).check()) == "output_exists"
    Output(store, kind="chipstore", folder=True, replace=True).check()  # eo-ssl's, with --overwrite: fine
    (store / "my_notes.txt").write_text("mine")  # a user's file inside: replacing the folder would delete it
    assert code_of(lambda: Output(store, kind="chipstore", folder=True, replace=True).check()) == "not_eo_ssl_output"
    empty = tmp_path / "empty"
    empty.mkdir()
    Output(empty, kind="chipstore", folder=True).check()  # an empty folder holds nothing to lose
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert code_of(lambda: Output(a_file, kind="chipstore", folder=True, replace=True).check()) == "not_eo_ssl_output"
    assert a_file.read_text() == "mine"


def test_commit_replaces_only_the_output_checked_at_the_start(tmp_path):
    out = tmp_path / "report"
    first = Output(out, kind="report", folder=True, replace=True).check()
    (first.start() / "report.json").write_text("1")
    first.commit()
    assert (out / "report.json").read_text() == "1" and (out / outputs.MARKER).is_file()
    # a run that started before `first` finished: its --out was free then, so it must not clobber
    late = Output(tmp_path / "late", kind="report", folder=True).check()
    late.path = out  # as if it had checked `out` while it was still free
    (late.start() / "report.json").write_text("2")
    assert code_of(late.commit) == "output_exists"
    assert (out / "report.json").read_text() == "1"
    late.abort()
    # with --overwrite: replaces what it saw, but not a newer output another run put there meanwhile
    second = Output(out, kind="report", folder=True, replace=True).check()
    (second.start() / "report.json").write_text("3")
    third = Output(out, kind="report", folder=True, replace=True).check()
    third.tmp = output_paths.temp_path(out, folder=True, pid=dead_pid())  # another process's temporary name
    (third.start() / "report.json").write_text("4")
    third.commit()
    assert code_of(second.commit) == "output_exists"
    assert (out / "report.json").read_text() == "4"
    second.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no .tmp-, no .old- left


def test_file_commit_never_clobbers(tmp_path):
    out = tmp_path / "labels.gpkg"
    a = Output(out, kind="labelled parcels", folder=False).check()
    b = Output(out, kind="labelled parcels", folder=False).check()
    a.start().write_bytes(b"a")
    a.commit()
    b.tmp.write_bytes(b"b")
    assert code_of(b.commit) == "output_exists"
    assert out.read_bytes() == b"a"
    b.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.gpkg"]


def test_stale_temporaries_are_swept_and_live_ones_respected(tmp_path):
    out = tmp_path / "store"
    dead = dead_pid()
    stale_dir = tmp_path / f"store.tmp-{dead}"
    (stale_dir / "sub").mkdir(parents=True)
    stale_file = tmp_path / f".map.tif.part-{dead}.tif"
    stale_file.write_bytes(b"x")
    (tmp_path / f".map.tif.part-{dead}.tif.aux.xml").write_text("x")
    other = tmp_path / f"other.tmp-{dead}"  # another output's temporary: not this output's to sweep
    other.mkdir()
    assert output_paths.sweep_stale(out) == [stale_dir]
    assert len(output_paths.sweep_stale(tmp_path / "map.tif")) == 2 and not stale_file.exists()
    assert other.exists()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            (tmp_path / f"store.tmp-{live.pid}").mkdir()
            assert code_of(lambda: Output(out, kind="chipstore", folder=True).check()) == "output_busy"
            assert (tmp_path / f"store.tmp-{live.pid}").exists()  # a live run's work is never removed
        finally:
            live.kill()


def test_commit_gives_the_users_umask(tmp_path):
    out = tmp_path / "model"
    output = Output(out, kind="model", folder=True).check()
    tmp = output.start()
    secret = tmp / "weights.safetensors"
    secret.write_bytes(b"x")
    os.chmod(secret, 0o600)  # as safetensors and mkstemp create files
    old = os.umask(0o027)
    try:
        output.commit()
    finally:
        os.umask(old)
    assert (out / "weights.safetensors").stat().st_mode & 0o777 == 0o640
    assert out.stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    RuntimeError("TIFFAppendToStrip:Write error at scanline 0: No space left on device"),
    RuntimeError("sqlite3_exec(CREATE TABLE ...) failed: database or disk is full"),
])
def test_full_disks_are_recognised(exc):
    assert disk.is_disk_full(exc)
    try:
        raise ValueError("wrapped") from exc
    except ValueError as wrapped:
        assert disk.is_disk_full(wrapped)
    assert not disk.is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_free_space_is_checked_before_the_first_byte(tmp_path):
    free = disk.free_bytes(tmp_path)
    assert free > 0
    disk.check_free_space(tmp_path / "store", 1)
    assert code_of(lambda: disk.check_free_space(tmp_path / "store", free + 2**40)) == "disk_full"
