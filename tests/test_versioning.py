"""Lab 05's data versioning against real DVC: add + push gives a hash, status is clean, an older version
comes back by its hash, a missing remote is a clear error, and concurrent adds queue on the lock."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from helpers.api.extract import file_sha256, snapshot_path, write_snapshot
from helpers.data.ecommerce import generate_ecommerce
from helpers.versioning.datarepo import VersioningError, checkout, repo_lock, setup_repo, status, track


@pytest.fixture
def project(test_state) -> tuple[Path, Path]:
    """A fresh DVC project and local remote under the suite's state folder (removed afterwards)."""
    base = test_state / "capstone-dvc" / uuid.uuid4().hex[:8]
    root, remote = setup_repo(base / "data", base / "remote"), base / "remote"
    yield root, remote
    shutil.rmtree(base, ignore_errors=True)


def _day(seed: int) -> pd.DataFrame:
    return generate_ecommerce(2_000, seed, "2026-01-01", 1, progress=False).events


def test_add_push_status_and_checkout_an_older_version(project):
    """Check that add + push leaves a clean status and that checking out an older hash gives its bytes back."""
    root, _ = project
    features = root / "features" / "day.parquet"
    write_snapshot(_day(1), features)
    first_sha = file_sha256(features)
    v1 = track(features, root=root)
    assert v1.pushed >= 1 and len(v1.md5) == 32, f"expected the file pushed and an md5 hash, got {v1}"
    state = status(root)
    assert state.clean, f"dvc status should be clean right after add + push, got {state}"

    features.chmod(0o644)
    features.unlink()  # a retrain writes a new feature set in place
    write_snapshot(_day(2), features)
    v2 = track(features, root=root)
    assert v2.md5 != v1.md5 and file_sha256(features) != first_sha, "different data must give a different hash"

    back = checkout(features, v1.md5, root=root)
    assert back.md5 == v1.md5 and file_sha256(features) == first_sha, (
        f"checking out {v1.md5} should restore the first version's bytes (sha256 {first_sha[:12]}...), got "
        f"hash {back.md5} and sha256 {file_sha256(features)[:12]}...")
    assert status(root).clean, "after checking out a pushed version the project should still be clean"

    with pytest.raises(VersioningError, match="neither the cache nor the remote"):
        checkout(features, "0" * 32, root=root)
    assert file_sha256(features) == first_sha, "a failed checkout must leave the workspace's version in place"


def test_a_missing_remote_is_a_clear_error(project):
    """Check that a remote folder that has gone (an unmounted volume) stops the push with a clear error."""
    root, remote = project
    snapshot = snapshot_path("2026-01-01", root)
    write_snapshot(_day(3), snapshot)
    shutil.rmtree(remote)
    with pytest.raises(VersioningError, match="does not exist.*nothing was pushed"):
        track(snapshot, root=root)
    assert not remote.exists(), "the helper must not silently create a remote that went missing"


def test_two_threads_adding_at_once_both_succeed(project):
    """Check that two adds started while a long DVC command holds DVC's repo lock queue and both succeed.

    DVC alone gives up after 3 s ("Unable to acquire lock"); with the workbook's lock they wait their turn.
    """
    from dvc.repo import Repo

    root, _ = project
    paths = [snapshot_path(f"2026-01-0{i}", root) for i in (1, 2)]
    for seed, path in enumerate(paths):
        write_snapshot(_day(seed + 10), path)
    results, errors, busy = {}, [], threading.Event()

    def long_command() -> None:  # like a push of a big snapshot: DVC's own lock held for 5 s
        with repo_lock(root), Repo(str(root)) as repo, repo.lock:
            busy.set()
            time.sleep(5)

    def add(path: Path) -> None:
        try:
            results[path] = track(path, root=root)
        except Exception as err:  # reported below with its type and message
            errors.append(f"{path.parent.name}: {type(err).__name__}: {err}")

    holder = threading.Thread(target=long_command)
    holder.start()
    assert busy.wait(60), "the long DVC command did not start"
    threads = [threading.Thread(target=add, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in (*threads, holder):
        thread.join(timeout=120)
    assert not errors, f"both adds should wait for the lock and succeed, got {errors}"
    assert len(results) == 2 and status(root).clean, f"expected two versions and a clean status, got {results}"
