"""The object-store contract, run against every adapter: the local folder, and GCS on
fake-gcs-server (each GCS test its own fresh bucket; the emulator starts only when a
GCS-parametrised test runs).

Also the local store's crash safety (a writer killed between its temp write and the rename
leaves the previous object intact), and what only GCS has: retries of transient HTTP failures,
ambiguous writes, generation-pinned reads, tested through a real misbehaving HTTP proxy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from barlake.adapters.gcs_store import SIMPLE_UPLOAD_LIMIT, GcsObjectStore
from barlake.adapters.local_store import LocalObjectStore
from barlake.emulators import Emulator
from barlake.ports import ObjectStore, PreconditionFailed, TransientError
from conftest import EMULATOR_PROJECT
from flaky_proxy import FlakyProxy


def _local(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return LocalObjectStore(tmp, "bucket")


def _gcs(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    request.getfixturevalue("emulator_env")(request.getfixturevalue("gcs_emulator"))
    # Built as config.py builds it: no client given, the emulator found through the environment.
    store = GcsObjectStore(f"t-{uuid.uuid4().hex}", project=EMULATOR_PROJECT)
    store.client.create_bucket(store.bucket)
    return store


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], ObjectStore]] = {
    "local": _local,
    "gcs": _gcs,
}


@pytest.fixture(params=sorted(ADAPTERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return ADAPTERS[request.param](request, tmp_path)


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


# --------------------------------------------------------------------------- GCS only


def _client(endpoint: str) -> storage.Client:
    return storage.Client(
        project=EMULATOR_PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture
def gcs_bucket(gcs_emulator: Emulator) -> str:
    """A fresh bucket on fake-gcs-server, created directly (not through the adapter)."""
    name = f"t-{uuid.uuid4().hex}"
    _client(gcs_emulator.url).create_bucket(name)
    return name


@pytest.fixture
def proxy(gcs_emulator: Emulator) -> Iterator[FlakyProxy]:
    p = FlakyProxy(gcs_emulator.host)
    yield p
    p.close()


def _via(proxy: FlakyProxy, bucket: str, **kwargs: Any) -> GcsObjectStore:
    """The adapter talking to fake-gcs-server through the proxy, with quick backoff."""
    kwargs = {"initial_backoff": 0.01, "max_backoff": 0.05, **kwargs}
    return GcsObjectStore(bucket, _client(proxy.url), **kwargs)


UPLOAD = "/upload/storage/v1/b/"
DOWNLOAD = "/download/storage/v1/b/"
STAT_A = "/o/daily%2FA.parquet?projection"  # the object's metadata GET (not its download)


def test_gcs_conflict_reports_the_current_generation_and_is_not_retried(
    proxy: FlakyProxy, gcs_bucket: str
) -> None:
    store = _via(proxy, gcs_bucket)
    first = store.write("daily/A.parquet", b"one", if_generation_match=0)
    with pytest.raises(PreconditionFailed) as caught:
        store.write("daily/A.parquet", b"two", if_generation_match=0)
    assert (caught.value.expected, caught.value.actual) == (0, first.generation)
    assert proxy.count("POST", UPLOAD) == 2  # one request per write: a 412 is never retried
    assert store.delete("daily/A.parquet") is True
    with pytest.raises(PreconditionFailed) as caught:
        store.write("daily/A.parquet", b"three", if_generation_match=first.generation)
    assert (caught.value.expected, caught.value.actual) == (first.generation, None)
    assert store.read("daily/A.parquet") is None


def test_gcs_precondition_holds_up_to_the_simple_upload_limit(
    gcs_emulator: Emulator, gcs_bucket: str
) -> None:
    """The largest object still sent in one request: the emulator enforces its precondition
    (it would not on a resumable upload), so the conflict path is real at every size we use."""
    store = GcsObjectStore(gcs_bucket, _client(gcs_emulator.url))
    big = b"x" * SIMPLE_UPLOAD_LIMIT
    store.write("big", big, if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        store.write("big", b"y" * SIMPLE_UPLOAD_LIMIT, if_generation_match=0)
    got = store.read("big")
    assert got is not None and got.data == big


def test_gcs_transient_failures_are_retried(proxy: FlakyProxy, gcs_bucket: str) -> None:
    store = _via(proxy, gcs_bucket)
    proxy.fail("POST", UPLOAD, status=503, times=2)
    proxy.fail("GET", DOWNLOAD, status=429)
    proxy.fail("GET", STAT_A, status=0)  # connection dropped without an answer
    proxy.fail("GET", "/o?", status=502)  # the listing
    info = store.write("daily/A.parquet", b"PAR1", if_generation_match=0)
    got = store.read("daily/A.parquet")
    assert got is not None and got.data == b"PAR1" and got.info.generation == info.generation
    assert [i.name for i in store.list("daily/")] == ["daily/A.parquet"]
    assert proxy.count("POST", UPLOAD) == 3
    assert proxy.count("GET", DOWNLOAD) == 2
    assert all(rule.hits == rule.times for rule in proxy.rules)


def test_gcs_persistent_transient_failure_raises_transient_error(
    proxy: FlakyProxy, gcs_bucket: str
) -> None:
    store = _via(proxy, gcs_bucket, max_attempts=3)
    proxy.fail("POST", UPLOAD, status=503, times=-1)
    with pytest.raises(TransientError, match="after 3 attempts"):
        store.write("daily/A.parquet", b"PAR1", if_generation_match=0)
    assert proxy.count("POST", UPLOAD) == 3
    proxy.rules.clear()
    proxy.fail("GET", STAT_A, status=500, times=-1)
    with pytest.raises(TransientError):
        store.stat("daily/A.parquet")
    assert proxy.count("GET", STAT_A) == 3


@pytest.mark.parametrize("status", [400, 403, 404])
def test_gcs_permanent_errors_are_not_retried(
    proxy: FlakyProxy, gcs_bucket: str, status: int
) -> None:
    store = _via(proxy, gcs_bucket)
    proxy.fail("POST", UPLOAD, status=status)
    with pytest.raises(api_exceptions.ClientError) as caught:
        store.write("daily/A.parquet", b"PAR1")
    assert caught.value.code == status
    assert proxy.count("POST", UPLOAD) == 1


def test_gcs_ambiguous_create_that_succeeded_is_not_a_conflict(
    proxy: FlakyProxy, gcs_bucket: str
) -> None:
    """The first upload is applied but its answer is lost (503 after forwarding); the retry
    meets 412 from our own object, and the write reports success with that object."""
    store = _via(proxy, gcs_bucket)
    proxy.fail("POST", UPLOAD, status=503, after_forward=True)
    info = store.write("daily/A.parquet", b"PAR1", if_generation_match=0, metadata={"rows": "1"})
    assert proxy.count("POST", UPLOAD) == 2
    stat = store.stat("daily/A.parquet")
    assert stat == info and info.metadata == {"rows": "1"} and info.size == 4


def test_gcs_ambiguous_write_overtaken_by_another_writer_is_a_conflict(
    gcs_emulator: Emulator, proxy: FlakyProxy, gcs_bucket: str
) -> None:
    """Our compare-and-swap is applied, its answer lost, and another writer replaces it before
    the retry: the retry's 412 is a real conflict, with the other writer's generation."""
    store = _via(proxy, gcs_bucket)
    direct = GcsObjectStore(gcs_bucket, _client(gcs_emulator.url))
    base = store.write("k", b"base", if_generation_match=0)
    theirs: list[int] = []

    def other_writer() -> None:
        current = direct.stat("k")
        assert current is not None
        theirs.append(
            direct.write("k", b"theirs", if_generation_match=current.generation).generation
        )

    proxy.fail("POST", UPLOAD, status=503, after_forward=True, on_hit=other_writer)
    with pytest.raises(PreconditionFailed) as caught:
        store.write("k", b"ours", if_generation_match=base.generation)
    assert caught.value.actual == theirs[0]
    got = store.read("k")
    assert got is not None and got.data == b"theirs"


def test_gcs_metadata_and_content_type_round_trip(gcs_emulator: Emulator, gcs_bucket: str) -> None:
    store = GcsObjectStore(gcs_bucket, _client(gcs_emulator.url))
    meta = {"schema_version": "1", "source": "yahoo", "rows": "5031", "last_date": "2024-06-28"}
    store.write("daily/BRK-B.parquet", b"PAR1", metadata=meta)
    store.write("runs/r1.json", b"{}", metadata={"note": "café ✓"})
    got = store.read("daily/BRK-B.parquet")
    assert got is not None and dict(got.info.metadata) == meta
    assert dict(store.list("runs/").__next__().metadata) == {"note": "café ✓"}
    raw = _client(gcs_emulator.url).bucket(gcs_bucket)
    assert raw.get_blob("daily/BRK-B.parquet").content_type == "application/vnd.apache.parquet"
    assert raw.get_blob("runs/r1.json").content_type == "application/octet-stream"


def test_gcs_read_pins_the_generation_while_a_writer_replaces_the_object(
    gcs_emulator: Emulator, gcs_bucket: str
) -> None:
    """Bytes, generation and metadata always belong together, however reads and writes
    interleave. The writer replaces the object every few milliseconds (GCS itself allows about
    one write per second per object name)."""
    store = GcsObjectStore(gcs_bucket, _client(gcs_emulator.url))
    written: dict[int, bytes] = {}
    first = store.write("hot", b"v0" * 1000)
    written[first.generation] = b"v0" * 1000
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            data = f"v{n}".encode() * 1000
            written[store.write("hot", data, metadata={"n": str(n)}).generation] = data
            time.sleep(0.002)

    seen: list[tuple[int, bytes, dict[str, str]]] = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            got = store.read("hot")
            assert got is not None
            seen.append((got.info.generation, got.data, dict(got.info.metadata)))
    finally:
        stop.set()
        thread.join()
    assert len({g for g, _, _ in seen}) > 10  # the object really was replaced under the reads
    for generation, data, metadata in seen:
        assert written[generation] == data
        assert metadata == ({"n": data[1 : data.index(b"v", 1)].decode()} if metadata else {})


# ------------------------------------------------------------------ versions (as-of reads)


def test_versions_of_an_unversioned_or_missing_object(store: ObjectStore) -> None:
    assert store.versions("a/none") == []
    assert store.read_version("a/none", 1) is None
    info = store.write("a/x", b"one")
    (live,) = [v for v in store.versions("a/x") if v.noncurrent_since is None]
    assert (live.generation, live.size) == (info.generation, 3)
    got = store.read_version("a/x", info.generation)
    assert got is not None and got.data == b"one"


@pytest.fixture(scope="module")
def versioned_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """fake-gcs-server's memory backend: the one that keeps versions (the filesystem backend
    refuses a versioned bucket)."""
    from barlake.emulators import EmulatorUnavailable, start_fake_gcs

    try:
        emulator = start_fake_gcs(tmp_path_factory.mktemp("gcs-mem"), backend="memory")
    except EmulatorUnavailable as exc:
        if os.environ.get("BARLAKE_REQUIRE_EMULATORS") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield emulator
    emulator.stop()


def _versioned_local(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return LocalObjectStore(tmp, "bucket", keep_versions_days=30)


def _versioned_gcs(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    emulator = request.getfixturevalue("versioned_gcs")
    request.getfixturevalue("emulator_env")(emulator)
    store = GcsObjectStore(f"v-{uuid.uuid4().hex}", project=EMULATOR_PROJECT)
    bucket = store.client.bucket(store.bucket)
    bucket.versioning_enabled = True
    store.client.create_bucket(bucket)
    return store


@pytest.fixture(params=["local", "gcs"])
def versioned(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return {"local": _versioned_local, "gcs": _versioned_gcs}[request.param](request, tmp_path)


def test_a_replaced_generation_stays_readable(versioned: ObjectStore) -> None:
    first = versioned.write("daily/X.parquet", b"one", metadata={"k": "1"})
    second = versioned.write("daily/X.parquet", b"two", if_generation_match=first.generation)
    old = versioned.read_version("daily/X.parquet", first.generation)
    assert old is not None and old.data == b"one" and old.info.generation == first.generation
    assert old.info.metadata == {"k": "1"}
    new = versioned.read_version("daily/X.parquet", second.generation)
    assert new is not None and new.data == b"two"
    assert versioned.read("daily/X.parquet").data == b"two"  # type: ignore[union-attr]
    listed = versioned.versions("daily/X.parquet")
    assert listed[-1].generation == second.generation and listed[-1].noncurrent_since is None
    if isinstance(versioned, LocalObjectStore):  # fake-gcs-server lists only the live version
        assert [v.generation for v in listed] == [first.generation, second.generation]
        assert listed[0].noncurrent_since is not None
        assert listed[0].created < listed[0].noncurrent_since <= listed[1].created


def test_local_versions_survive_a_delete_and_expire_after_the_retention(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, "bucket", keep_versions_days=30)
    first = store.write("a/x", b"one")
    store.delete("a/x")
    (gone,) = store.versions("a/x")
    assert gone.generation == first.generation and gone.noncurrent_since is not None
    assert store.read_version("a/x", first.generation).data == b"one"  # type: ignore[union-attr]
    assert not any(
        p.name.startswith(".barlake") for p in (tmp_path / "bucket").iterdir() if p.is_file()
    )
    short = LocalObjectStore(tmp_path, "b2", keep_versions_days=0)
    a = short.write("a/x", b"one")
    short.write("a/x", b"two")
    short.write("a/x", b"three")  # prunes what became noncurrent before now - 0 days
    assert short.read_version("a/x", a.generation) is None
    assert [v.noncurrent_since for v in short.versions("a/x")][-1] is None
    assert LocalObjectStore(tmp_path, "b3").versions("a/x") == []  # no versions kept: none
