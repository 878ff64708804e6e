"""Object store on a local folder, with GCS semantics: generations and conditional writes.

Layout: `<root>/<bucket>/<name>` holds the object's bytes as a plain file, so DuckDB or pandas
can read `<root>/<bucket>/daily/*.parquet` directly. The generation is the file's modification
time in microseconds (GCS generations are microsecond timestamps too), set explicitly on a
temporary file *before* the one `os.replace` that publishes it: bytes and generation change in
a single atomic step. A writer killed at any point leaves either the old object or the new one,
never a mix; temporaries live in `<bucket>/.barlake/tmp/`, out of every glob.

Conditional writes hold an exclusive `flock` on a per-object lock file, so compare-and-swap is
safe across threads and processes on one machine. Custom metadata is a JSON sidecar named after
the generation, written before the publishing rename; stale sidecars are pruned after it.

A writer killed mid-write leaves its temporary behind. Temporaries are named after their host
and process (`<host>.<pid>.<random>`); opening the store removes those of this host whose
process is gone, and any older than TMP_MAX_AGE_SECONDS (another host's, on a shared folder).
Everything is created private to its owner (folders 0700, files 0600): a lake is nobody else's
business, whatever the umask.

Versions (as GCS object versioning, for as-of reads): with `keep_versions_days`, a replaced or
deleted object stays readable as `.barlake/versions/<digest>/<generation>-<noncurrent since>`,
a hard link to the replaced file (no copy: the publishing rename only moves the name), with its
metadata beside it; versions noncurrent for longer than the retention are pruned at the next
write of that name, as GCS's lifecycle rule deletes them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from barlake.ports import ObjectInfo, ObjectVersion, PreconditionFailed, StoredObject

FinalizeHook = Callable[[ObjectInfo, str], None]
_INTERNAL = ".barlake"
TMP_MAX_AGE_SECONDS = 3600  # no write takes this long: an older temporary is an orphan
_DIR_MODE, _FILE_MODE = 0o700, 0o600


def _private_dirs(path: Path) -> None:
    """mkdir -p, each created folder 0700 (mkdir's own parents= ignores the mode)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=_DIR_MODE, exist_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class LocalObjectStore:
    # A stat is a few microseconds: readers ask the folder for generations, never a cache
    # (barlake.services.generations), so no write here can be read stale.
    stat_is_cheap = True

    def __init__(
        self,
        root: str | Path,
        bucket: str,
        on_finalize: FinalizeHook | None = None,
        keep_versions_days: float | None = None,
    ) -> None:
        self.bucket = bucket
        self.dir = Path(root) / bucket
        self._internal = self.dir / _INTERNAL
        for sub in ("tmp", "locks", "meta"):
            _private_dirs(self._internal / sub)
        self._on_finalize = on_finalize
        self.keep_versions_days = keep_versions_days
        self._tmp_prefix = f"{socket.gethostname()}.{os.getpid()}."
        self.removed_temporaries = self._sweep_temporaries()

    def _sweep_temporaries(self) -> int:
        """Remove the temporaries of writers that died mid-write; how many."""
        host = socket.gethostname()
        removed = 0
        for tmp in (self._internal / "tmp").iterdir():
            parts = tmp.name.split(".")
            try:
                age = time.time() - tmp.stat().st_mtime
            except FileNotFoundError:
                continue
            same_host = len(parts) == 3 and parts[0] == host and parts[1].isdigit()
            orphan = (same_host and not _alive(int(parts[1]))) or age > TMP_MAX_AGE_SECONDS
            if orphan and not (same_host and int(parts[1]) == os.getpid()):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    # -- paths
    def _path(self, name: str) -> Path:
        if (
            not name
            or name.startswith("/")
            or ".." in name.split("/")
            or name.startswith(_INTERNAL)
        ):
            raise ValueError(f"invalid object name {name!r}")
        return self.dir / name

    def _digest(self, name: str) -> str:
        return hashlib.sha1(name.encode()).hexdigest()

    def _meta_path(self, name: str, generation: int) -> Path:
        return self._internal / "meta" / f"{self._digest(name)}.{generation}.json"

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        lock = os.open(
            self._internal / "locks" / f"{self._digest(name)}.lock",
            os.O_RDWR | os.O_CREAT,
            _FILE_MODE,
        )
        with open(lock, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _info(self, name: str, st: os.stat_result) -> ObjectInfo:
        generation = st.st_mtime_ns // 1000
        try:
            metadata = json.loads(self._meta_path(name, generation).read_text())
        except FileNotFoundError:
            metadata = {}
        return ObjectInfo(name=name, generation=generation, size=st.st_size, metadata=metadata)

    # -- reads
    def read(self, name: str) -> StoredObject | None:
        try:
            with open(self._path(name), "rb") as fh:
                st = os.fstat(fh.fileno())  # the inode we opened: bytes and generation agree
                data = fh.read()
        except FileNotFoundError:
            return None
        return StoredObject(info=self._info(name, st), data=data)

    def stat(self, name: str) -> ObjectInfo | None:
        try:
            return self._info(name, os.stat(self._path(name)))
        except FileNotFoundError:
            return None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.dir
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if not (Path(dirpath) == base and d == _INTERNAL)
            )
            for fn in sorted(filenames):
                name = os.path.relpath(os.path.join(dirpath, fn), base).replace(os.sep, "/")
                if name.startswith(prefix):
                    try:
                        yield self._info(name, os.stat(os.path.join(dirpath, fn)))
                    except FileNotFoundError:
                        continue

    # -- writes
    def _current_generation(self, path: Path) -> int:
        try:
            return os.stat(path).st_mtime_ns // 1000
        except FileNotFoundError:
            return 0

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        path = self._path(name)
        with self._locked(name):
            current = self._current_generation(path)
            if if_generation_match is not None and current != if_generation_match:
                raise PreconditionFailed(name, if_generation_match, current or None)
            generation = max(time.time_ns() // 1000, current + 1)
            _private_dirs(path.parent)
            tmp = self._internal / "tmp" / f"{self._tmp_prefix}{uuid.uuid4().hex}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
                with open(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.utime(tmp, ns=(generation * 1000, generation * 1000))
                if os.stat(tmp).st_mtime_ns != generation * 1000:
                    raise OSError(
                        f"{self.dir}: the filesystem does not keep nanosecond mtimes, "
                        "which the local store uses as generations"
                    )
                if metadata:
                    meta = os.open(
                        self._meta_path(name, generation),
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        _FILE_MODE,
                    )
                    with open(meta, "w") as fh:
                        fh.write(json.dumps(dict(metadata)))
                self._keep_version(name, path, current, generation)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            if current:
                self._meta_path(name, current).unlink(missing_ok=True)
        info = ObjectInfo(
            name=name, generation=generation, size=len(data), metadata=dict(metadata or {})
        )
        if self._on_finalize is not None:
            self._on_finalize(info, self.bucket)
        return info

    def delete(self, name: str) -> bool:
        path = self._path(name)
        with self._locked(name):
            current = self._current_generation(path)
            self._keep_version(name, path, current, time.time_ns() // 1000)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            self._meta_path(name, current).unlink(missing_ok=True)
            return True

    # -- versions (kept only with keep_versions_days)
    def _versions_dir(self, name: str) -> Path:
        return self._internal / "versions" / self._digest(name)

    def _keep_version(self, name: str, path: Path, current: int, until: int) -> None:
        """Keep the live generation `current` (about to be replaced or deleted at `until`, µs)
        as a noncurrent version, and prune versions past the retention. Called under the
        object's lock, before the publishing rename."""
        if self.keep_versions_days is None or not current:
            return
        folder = self._versions_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "name").write_text(name)
        kept = folder / f"{current}-{until}"
        try:
            os.link(path, kept)
        except FileExistsError:
            pass
        except FileNotFoundError:
            return
        meta = self._meta_path(name, current)
        if meta.exists():
            (folder / f"{current}.json").write_text(meta.read_text())
        horizon = until - int(self.keep_versions_days * 86_400_000_000)
        for entry in folder.iterdir():
            gen, _, since = entry.name.partition("-")
            if since.isdigit() and int(since) < horizon:
                entry.unlink(missing_ok=True)
                (folder / f"{gen}.json").unlink(missing_ok=True)

    def _kept(self, name: str) -> list[tuple[int, int, Path]]:
        folder = self._versions_dir(name)
        if not folder.is_dir():
            return []
        out = []
        for entry in folder.iterdir():
            gen, _, since = entry.name.partition("-")
            if gen.isdigit() and since.isdigit():
                out.append((int(gen), int(since), entry))
        return sorted(out)

    def versions(self, name: str) -> list[ObjectVersion]:
        self._path(name)  # validates the name
        out = [
            ObjectVersion(name, gen, entry.stat().st_size, _time(gen), _time(since))
            for gen, since, entry in self._kept(name)
        ]
        live = self.stat(name)
        if live is not None:
            out.append(ObjectVersion(name, live.generation, live.size, _time(live.generation)))
        return out

    def read_version(self, name: str, generation: int) -> StoredObject | None:
        live = self.read(name)
        if live is not None and live.info.generation == generation:
            return live
        for gen, _, entry in self._kept(name):
            if gen == generation:
                try:
                    data = entry.read_bytes()
                except FileNotFoundError:
                    return None  # pruned meanwhile
                meta = entry.parent / f"{gen}.json"
                metadata = json.loads(meta.read_text()) if meta.exists() else {}
                info = ObjectInfo(name=name, generation=gen, size=len(data), metadata=metadata)
                return StoredObject(info=info, data=data)
        return None


def _time(microseconds: int) -> datetime:
    return datetime.fromtimestamp(microseconds / 1_000_000, UTC)
