"""The object-store contract, run against every adapter (local today; GCS joins the list).

Also the local store's crash safety: a writer killed between its temp write and the rename
leaves the previous object intact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from barlake.adapters.local_store import LocalObjectStore
from barlake.ports import ObjectStore, PreconditionFailed

ADAPTERS: dict[str, Callable[[Path], ObjectStore]] = {
    "local": lambda tmp: LocalObjectStore(tmp, "bucket"),
}


@pytest.fixture(params=sorted(ADAPTERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return ADAPTERS[request.param](tmp_path)


def test_missing_object(store: ObjectStore) -> None:
    assert store.read("daily/NOPE.parquet") is None
    assert store.stat("daily/NOPE.parquet") is None
    assert store.delete("daily/NOPE.parquet") is False


def test_create_only_and_compare_and_swap(store: ObjectStore) -> None:
    first = store.write("a/x", b"one", if_generation_match=0, metadata={"rows": "1"})
    with pytest.raises(PreconditionFailed):
        store.write("a/x", b"again", if_generation_match=0)
    got = store.read("a/x")
    assert got is not None and got.data == b"one" and got.info.generation == first.generation
    assert got.info.metadata == {"rows": "1"}
    second = store.write("a/x", b"two", if_generation_match=first.generation)
    assert second.generation > first.generation
    with pytest.raises(PreconditionFailed) as caught:
        store.write("a/x", b"stale", if_generation_match=first.generation)
    assert caught.value.actual == second.generation
    got = store.read("a/x")
    assert got is not None and got.data == b"two" and got.info.metadata == {}
    stat = store.stat("a/x")
    assert stat is not None and stat.generation == second.generation and stat.size == 3


def test_unconditional_write_and_delete(store: ObjectStore) -> None:
    store.write("k", b"1")
    store.write("k", b"2")
    got = store.read("k")
    assert got is not None and got.data == b"2"
    assert store.delete("k") is True
    assert store.read("k") is None


def test_listing_with_prefixes(store: ObjectStore) -> None:
    for name in ("daily/A.parquet", "daily/B.parquet", "weekly/A.parquet", "dailyX"):
        store.write(name, name.encode())
    assert [i.name for i in store.list("daily/")] == ["daily/A.parquet", "daily/B.parquet"]
    assert len(list(store.list(""))) == 4
    assert all(i.size == len(i.name) for i in store.list(""))


def test_concurrent_compare_and_swap_loses_no_update(store: ObjectStore) -> None:
    """16 threads append one token each with read → CAS write → retry: all 16 survive."""
    store.write("counter", b"", if_generation_match=0)

    def append(token: bytes) -> None:
        while True:
            cur = store.read("counter")
            assert cur is not None
            try:
                store.write("counter", cur.data + token, if_generation_match=cur.info.generation)
                return
            except PreconditionFailed:
                continue

    threads = [threading.Thread(target=append, args=(bytes([65 + i]),)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.read("counter")
    assert got is not None and sorted(got.data) == list(range(65, 81))


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, "bucket")
    for bad in ("", "/abs", "a/../../etc", ".barlake/tmp/x"):
        with pytest.raises(ValueError):
            store.write(bad, b"x")


def test_local_objects_are_plain_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, "bucket")
    store.write("daily/A.parquet", b"PAR1")
    assert (tmp_path / "bucket" / "daily" / "A.parquet").read_bytes() == b"PAR1"


def test_writer_killed_between_temp_write_and_rename_leaves_previous_object(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, "bucket")
    before = store.write("daily/A.parquet", b"previous", if_generation_match=0)
    # A real writer process that is SIGKILLed at the instant it would rename its temp file.
    script = textwrap.dedent(
        f"""
        import os, signal
        import barlake.adapters.local_store as ls
        def killed(src, dst):
            assert os.path.getsize(src) == len(b"new content"), "temp file fully written"
            os.kill(os.getpid(), signal.SIGKILL)
        ls.os.replace = killed
        ls.LocalObjectStore({str(tmp_path)!r}, "bucket").write(
            "daily/A.parquet", b"new content", if_generation_match={before.generation})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    after = store.read("daily/A.parquet")
    assert after is not None and after.data == b"previous"
    assert after.info.generation == before.generation
    assert [i.name for i in store.list("")] == ["daily/A.parquet"]  # no partial object visible
    # The lock died with the process: the next writer proceeds.
    store.write("daily/A.parquet", b"next", if_generation_match=before.generation)
    leftovers = os.listdir(tmp_path / "bucket" / ".barlake" / "tmp")
    assert len(leftovers) == 1  # the dead writer's temp file, outside every glob
