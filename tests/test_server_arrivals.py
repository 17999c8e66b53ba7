"""Uploads hashed moments ago are not re-hashed by the push that names them, unless
anything about the file changed or the moment has passed (registry/server/arrivals.py)."""

from __future__ import annotations

import os
from pathlib import Path

from registry.server.arrivals import RecentUploads

SHA = "a" * 64


def _upload(tmp_path: Path, data: bytes = b"weights") -> Path:
    path = tmp_path / SHA
    path.write_bytes(data)
    return path


def test_an_upload_unchanged_since_it_arrived_is_taken_as_hashed(tmp_path: Path) -> None:
    path = _upload(tmp_path)
    arrivals = RecentUploads()
    assert not arrivals.unchanged(SHA, path)  # never seen arrive: re-hashed
    arrivals.note(SHA, path)
    assert arrivals.unchanged(SHA, path)
    assert not arrivals.unchanged("b" * 64, path)


def test_any_change_to_the_file_means_it_is_hashed_again(tmp_path: Path) -> None:
    arrivals = RecentUploads()
    path = _upload(tmp_path)
    arrivals.note(SHA, path)
    stat = path.stat()
    path.write_bytes(b"weighTs")  # same size; its times restored, its ctime cannot be
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not arrivals.unchanged(SHA, path)
    arrivals.note(SHA, path)
    os.chmod(path, 0o444)
    assert not arrivals.unchanged(SHA, path)
    arrivals.note(SHA, path)
    path.unlink()
    assert not arrivals.unchanged(SHA, path)
    replaced = _upload(tmp_path)  # another file under the same name
    assert not arrivals.unchanged(SHA, replaced)


def test_an_upload_that_waited_is_hashed_again(tmp_path: Path) -> None:
    path = _upload(tmp_path)
    arrivals = RecentUploads(seconds=0.0)
    arrivals.note(SHA, path)
    assert not arrivals.unchanged(SHA, path)


def test_only_the_latest_arrivals_are_kept(tmp_path: Path) -> None:
    arrivals = RecentUploads(capacity=2)
    paths = []
    for digit in "123":
        path = tmp_path / (digit * 64)
        path.write_bytes(digit.encode())
        arrivals.note(digit * 64, path)
        paths.append(path)
    assert not arrivals.unchanged("1" * 64, paths[0])
    assert arrivals.unchanged("2" * 64, paths[1]) and arrivals.unchanged("3" * 64, paths[2])


def test_the_servers_own_touch_keeps_a_recent_arrival_and_renews_no_other(tmp_path: Path) -> None:
    path = _upload(tmp_path)
    arrivals = RecentUploads()
    before = path.stat().st_mtime_ns
    arrivals.note(SHA, path)
    os.utime(path, ns=(before - 10**9, before - 10**9))  # an edit: no longer taken as hashed
    arrivals.touch(SHA, path)
    assert path.stat().st_mtime_ns > before - 10**9 and not arrivals.unchanged(SHA, path)
    arrivals.note(SHA, path)
    arrivals.touch(SHA, path)  # a retried PUT of an upload that just arrived
    assert arrivals.unchanged(SHA, path)
    waited = RecentUploads(seconds=0.0)
    waited.note(SHA, path)
    waited.touch(SHA, path)
    assert not waited.unchanged(SHA, path)
