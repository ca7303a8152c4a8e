"""The capstone's data under DVC: a git-less DVC project, a local remote, hashes as data versions.

The project's root is the capstone's data folder (``<capstone>/data``: raw snapshots and feature sets);
its remote is :func:`helpers.platform.config.dvc_remote_dir` (compose: a volume). Without git, a data
version *is* its DVC hash (the md5 in the ``.dvc`` file; a folder's ends in ``.dir``):
:func:`track` returns it, the registry tags models with it, and :func:`checkout` brings those bytes
back from the cache or the remote by rewriting the pointer file. The cache links files by hardlink
(read-only, no second copy of a large snapshot).

DVC holds a repo-wide lock and fails when another command holds it; here every DVC call first takes
one file lock (:func:`repo_lock`), so tasks in threads or processes queue. Python API
(``dvc.repo.Repo``) throughout: a command takes tenths of a second instead of ~2 s for the CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from helpers.platform import config

REMOTE = "local"
LOCK_TIMEOUT_S = 600.0


class VersioningError(RuntimeError):
    """A DVC step failed (no remote, a version nowhere to be found, the lock not acquired...)."""


@dataclass(frozen=True)
class DataVersion:
    """One tracked path and its DVC hash (small enough for an XCom: use :meth:`as_dict`)."""

    path: str
    md5: str
    size: int
    files: int
    pushed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DataStatus:
    """``dvc status`` of the workspace (vs the ``.dvc`` files) and of the remote (vs the cache)."""

    workspace: dict[str, Any]
    remote: dict[str, Any]

    @property
    def clean(self) -> bool:
        return not self.workspace and not self.remote


def data_root() -> Path:
    """The DVC project's root: ``<capstone>/data`` (where the training pipeline's extract writes)."""
    return config.capstone_dir() / "data"


@contextmanager
def repo_lock(root: str | Path | None = None, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the workbook's lock on the DVC project at ``root`` (one DVC call at a time, across processes)."""
    from filelock import FileLock, Timeout

    root = Path(root or data_root())
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root.parent / f".{root.name}.dvc.lock", timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout as err:
        raise VersioningError(f"waited {timeout_s:.0f} s for the DVC lock {lock.lock_file}: another task still "
                              f"runs DVC on {root}; retry later, or look for a hung process") from err
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _open(root: Path) -> Iterator[Any]:
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        raise VersioningError(f"{root} is not a DVC project yet: call helpers.versioning.datarepo.setup_repo()")
    with Repo(str(root)) as repo:
        yield repo


def setup_repo(root: str | Path | None = None, remote: str | Path | None = None) -> Path:
    """Create (or update) the git-less DVC project at ``root`` with ``remote`` as its default remote.

    Idempotent. Args default to :func:`data_root` and :func:`helpers.platform.config.dvc_remote_dir`.
    DVC's site cache goes inside the project (not ``/var/tmp/dvc``) and its analytics are off.
    """
    from dvc.repo import Repo

    root, remote = Path(root or data_root()), Path(remote or config.dvc_remote_dir())
    site_cache = root / ".dvc" / "tmp" / "site-cache"
    with repo_lock(root):
        root.mkdir(parents=True, exist_ok=True)
        remote.mkdir(parents=True, exist_ok=True)
        previous = os.environ.get("DVC_SITE_CACHE_DIR")
        os.environ["DVC_SITE_CACHE_DIR"] = str(site_cache)  # until the config says so (Repo opens before that)
        try:
            fresh = not (root / ".dvc").is_dir()
            with (Repo.init(str(root), no_scm=True) if fresh else Repo(str(root))) as repo, repo.config.edit() as conf:
                conf["core"].update({"remote": REMOTE, "analytics": False, "site_cache_dir": str(site_cache)})
                conf["cache"]["type"] = "hardlink,copy"
                conf["remote"][REMOTE] = {"url": str(remote)}
        finally:
            if previous is None:
                os.environ.pop("DVC_SITE_CACHE_DIR", None)
            else:
                os.environ["DVC_SITE_CACHE_DIR"] = previous
    return root


def _check_remote(repo: Any, root: Path) -> None:
    name = repo.config["core"].get("remote")
    url = repo.config["remote"].get(name, {}).get("url") if name else None
    if not url:
        raise VersioningError(f"the DVC project {root} has no default remote: push has nowhere to go. Run "
                              f"setup_repo() (dvc remote add -d {REMOTE} <folder>)")
    if "://" not in url and not Path(url).is_dir():
        raise VersioningError(f"the DVC remote {name!r} is the folder {url}, which does not exist (a volume not "
                              f"mounted, or deleted?); nothing was pushed. Restore it, or run setup_repo() to "
                              f"create an empty remote and push again")


def _version(stage: Any, root: Path, pushed: int = 0, t0: float | None = None) -> DataVersion:
    out = stage.outs[0]
    return DataVersion(Path(out.fs_path).relative_to(root).as_posix(), out.hash_info.value, int(out.meta.size or 0),
                       int(out.meta.nfiles or 1), pushed, time.perf_counter() - t0 if t0 else 0.0)


def _inside(path: str | Path, root: Path) -> Path:
    full = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if not full.is_relative_to(root.resolve()):
        raise VersioningError(f"{full} is outside the DVC project {root}: write snapshots and features under it")
    return full


def track(path: str | Path, *, root: str | Path | None = None, push: bool = True) -> DataVersion:
    """``dvc add`` a file or folder (and ``dvc push`` it); return its version (the DVC hash).

    Args:
        path: a snapshot file or a feature-set folder inside the project (absolute, or relative to ``root``).
        root: the DVC project (default :func:`data_root`; :func:`setup_repo` first).
        push: push the new version to the default remote (checked first: a missing remote adds nothing).

    Raises:
        VersioningError: no project, no remote, the path outside the project or missing.
    """
    t0, root = time.perf_counter(), Path(root or data_root())
    full = _inside(path, root)
    if not full.exists():
        raise VersioningError(f"cannot version {full}: it does not exist (did the task that writes it run?)")
    with repo_lock(root), _open(root) as repo:
        if push:
            _check_remote(repo, root)
        stage = repo.add([str(full)])[0]
        pushed = repo.push(targets=[stage.path]) if push else 0
        return _version(stage, root, pushed, t0)


def status(root: str | Path | None = None, *, remote: bool = True) -> DataStatus:
    """``dvc status`` (and ``dvc status --cloud``): empty dicts mean clean and fully pushed."""
    root = Path(root or data_root())
    with repo_lock(root), _open(root) as repo:
        if remote:
            _check_remote(repo, root)
        return DataStatus(dict(repo.status()), dict(repo.status(cloud=True)) if remote else {})


def checkout(path: str | Path, md5: str, *, root: str | Path | None = None) -> DataVersion:
    """Put version ``md5`` of ``path`` back in the workspace (from the cache, else the remote).

    The ``.dvc`` pointer is rewritten to ``md5`` and pulled; if that version is nowhere, the pointer
    is restored and a :class:`VersioningError` says so. Returns the checked-out version.
    """
    import yaml
    from dvc.exceptions import DvcException

    t0, root = time.perf_counter(), Path(root or data_root())
    full = _inside(path, root)
    pointer = full.with_name(full.name + ".dvc")
    with repo_lock(root), _open(root) as repo:
        _check_remote(repo, root)
        if not (repo.cache.local.exists(md5) or repo.cloud.get_remote_odb(command="pull").exists(md5)):
            raise VersioningError(f"version {md5} of {full.relative_to(root)} is in neither the cache nor the remote "
                                  f"(a hash from another project, or a version never pushed?); the workspace "
                                  f"keeps its current version")
        before = pointer.read_text() if pointer.exists() else None
        pointer.write_text(yaml.safe_dump({"outs": [{"md5": md5, "hash": "md5", "path": full.name}]}, sort_keys=False))
        try:
            repo.pull(targets=[str(pointer)], force=True)
        except (DvcException, OSError) as err:  # put the previous version back before reporting
            if before is None:
                pointer.unlink()
            else:
                pointer.write_text(before)
                repo.checkout(targets=[str(pointer)], force=True)
            raise VersioningError(f"version {md5} of {full.relative_to(root)} could not be checked out "
                                  f"({type(err).__name__}: {err}); the previous version is back in place") from err
        stage = repo.commit(str(pointer), force=True)[0]  # records size and file count in the pointer again
        return _version(stage, root, 0, t0)
