"""Object store on Google Cloud Storage (or fake-gcs-server through STORAGE_EMULATOR_HOST).

Why it is written the way it is:

- Writes are single-request ("multipart") uploads carrying `ifGenerationMatch`, the one upload
  kind whose precondition both GCS and fake-gcs-server enforce (the emulator ignores it on
  resumable uploads). The client library switches to a resumable upload above 8 MiB; objects
  here are one symbol's bars (hundreds of KiB), and real GCS still enforces the precondition
  on a resumable upload, so only the emulator would be lax for such an object.
- HTTP 412 becomes `PreconditionFailed` with the generation found now (None if absent), the
  same error the local store raises, so services handle conflicts once.
- Retries are ours alone (every library call gets `retry=None`, so retries never nest): only
  transient failures (408, 429, 5xx, connection resets and timeouts) are retried, with
  exponential backoff and jitter; 412, 404 and other 4xx surface at once. Retries that never
  succeed raise `TransientError`, which services let propagate so the message is redelivered.
- A write retried after an ambiguous failure (the first request may have been applied and only
  its answer lost) can meet 412 from its own first attempt. Then, if the live object holds our
  bytes (MD5) and our metadata, the write did happen: its info is returned instead of a false
  conflict. The same bytes written by someone else are indistinguishable, and equally fine.
- Reads fetch the object's metadata, then download exactly that generation: bytes, generation
  and metadata always belong together. If the object is replaced in between (the pinned
  generation is gone: 404), the read starts over.
- Versions (as-of reads): the raw bucket has object versioning; `versions` lists an object's
  generations (`versions=True`: noncurrent ones carry `timeDeleted`, when they stopped being
  live) and `read_version` downloads one pinned generation. fake-gcs-server's memory backend
  serves pinned generations but lists only the live one; its filesystem backend refuses
  versioning altogether.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from barlake.ports import (
    ObjectInfo,
    ObjectVersion,
    PreconditionFailed,
    StoredObject,
    TransientError,
)

T = TypeVar("T")

SIMPLE_UPLOAD_LIMIT = 8 * 1024 * 1024  # google-cloud-storage's _MAX_MULTIPART_SIZE
LOCAL_PROJECT = "barlake-local"
_TRANSIENT_CODES = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # builtin: resets, refused, aborted
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
)
_READ_RACES = 20  # times a read starts over because the object was replaced mid-read


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: throttling, a server error, or a connection that failed or timed out."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code in _TRANSIENT_CODES or isinstance(exc, api_exceptions.ServerError)
    return isinstance(exc, _TRANSIENT_TYPES)


def content_type_for(name: str) -> str:
    if name.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return "application/octet-stream"


def default_client(project: str | None = None) -> storage.Client:
    """A client for the emulator (anonymous) when STORAGE_EMULATOR_HOST is set, else one with
    the environment's default credentials."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project or LOCAL_PROJECT, credentials=AnonymousCredentials())
    return storage.Client(project=project)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class GcsObjectStore:
    """One GCS bucket behind the ObjectStore port."""

    def __init__(
        self,
        bucket: str,
        client: storage.Client | None = None,
        *,
        project: str | None = None,
        max_attempts: int = 6,
        initial_backoff: float = 0.25,
        max_backoff: float = 8.0,
        timeout: float = 60.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.bucket = bucket
        self.client = client if client is not None else default_client(project)
        self._bucket = self.client.bucket(bucket)
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.timeout = timeout

    # -- retries
    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """call() until it succeeds or fails for good; transient failures back off and retry."""
        last: BaseException | None = None
        for attempt in range(self.max_attempts):
            if attempt:
                ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
                time.sleep(ceiling * (0.5 + random.random() / 2))  # exponential, with jitter
            try:
                return call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                last = exc
        raise TransientError(
            f"gs://{self.bucket}: {what} still failing after {self.max_attempts} attempts: {last}"
        ) from last

    # -- reads
    @staticmethod
    def _info(blob: storage.Blob) -> ObjectInfo:
        return ObjectInfo(
            name=blob.name,
            generation=int(blob.generation),
            size=int(blob.size or 0),
            metadata=dict(blob.metadata or {}),
        )

    def _blob(self, name: str) -> storage.Blob | None:
        return self._retrying(
            f"stat {name}",
            lambda: self._bucket.get_blob(name, timeout=self.timeout, retry=None),
        )

    def _download(self, name: str, generation: int) -> bytes:
        """That generation's bytes (`?generation=`; the precondition too, for real GCS)."""
        pinned = self._bucket.blob(name, generation=generation)
        return self._retrying(
            f"read {name}#{generation}",
            lambda: pinned.download_as_bytes(
                if_generation_match=generation, timeout=self.timeout, retry=None
            ),
        )

    def stat(self, name: str) -> ObjectInfo | None:
        blob = self._blob(name)
        return self._info(blob) if blob is not None else None

    def read(self, name: str) -> StoredObject | None:
        for race in range(_READ_RACES):
            if race:  # lost a race with a writer: wait a little (jittered) and look again
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**race)))
            blob = self._blob(name)
            if blob is None:
                return None
            try:
                data = self._download(name, int(blob.generation))
            except (api_exceptions.NotFound, api_exceptions.PreconditionFailed):
                continue  # replaced or deleted since we looked: look again
            return StoredObject(info=self._info(blob), data=data)
        raise TransientError(f"gs://{self.bucket}/{name}: replaced faster than it could be read")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        def listing() -> list[ObjectInfo]:
            blobs = self.client.list_blobs(
                self._bucket, prefix=prefix or None, timeout=self.timeout, retry=None
            )
            return [self._info(b) for b in blobs]

        # The whole listing is one retried unit (a page failing midway restarts it), sorted by
        # name as every store lists (GCS already does; code-point order = UTF-8 byte order).
        yield from sorted(self._retrying(f"list {prefix!r}", listing), key=lambda i: i.name)

    # -- writes
    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        wanted_meta = {str(k): str(v) for k, v in (metadata or {}).items()}
        attempts = 0

        def upload() -> ObjectInfo:
            nonlocal attempts
            attempts += 1
            blob = self._bucket.blob(name)
            if wanted_meta:
                blob.metadata = wanted_meta
            try:
                blob.upload_from_string(
                    data,
                    content_type=content_type_for(name),
                    if_generation_match=if_generation_match,
                    timeout=self.timeout,
                    retry=None,
                )
            except api_exceptions.PreconditionFailed:
                if attempts > 1:  # an earlier attempt may have been applied: was it ours?
                    ours = self._ours(name, data, wanted_meta)
                    if ours is not None:
                        return ours
                raise
            return self._info(blob)

        try:
            return self._retrying(f"write {name}", upload)
        except api_exceptions.PreconditionFailed as exc:
            current = self._blob(name)
            actual = int(current.generation) if current is not None else None
            raise PreconditionFailed(name, if_generation_match, actual) from exc

    def _ours(self, name: str, data: bytes, metadata: Mapping[str, str]) -> ObjectInfo | None:
        """The live object's info if it holds exactly these bytes and this metadata."""
        blob = self._blob(name)
        if blob is None or int(blob.size or 0) != len(data):
            return None
        if dict(blob.metadata or {}) != dict(metadata):
            return None
        if blob.md5_hash is not None:
            same = blob.md5_hash == _md5(data)
        else:  # composite objects carry no MD5: compare the bytes of that generation
            try:
                same = data == self._download(name, int(blob.generation))
            except (api_exceptions.NotFound, api_exceptions.PreconditionFailed):
                return None  # replaced since: whatever is there now is not our write
        return self._info(blob) if same else None

    def delete(self, name: str) -> bool:
        attempts = 0

        def remove() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                self._bucket.blob(name).delete(timeout=self.timeout, retry=None)
            except api_exceptions.NotFound:
                # After an ambiguous failure, a 404 most likely means our first try deleted it.
                return attempts > 1
            return True

        return self._retrying(f"delete {name}", remove)

    # -- versions
    def versions(self, name: str) -> list[ObjectVersion]:
        def listing() -> list[ObjectVersion]:
            blobs = self.client.list_blobs(
                self._bucket, prefix=name, versions=True, timeout=self.timeout, retry=None
            )
            return [
                ObjectVersion(
                    name=b.name,
                    generation=int(b.generation),
                    size=int(b.size or 0),
                    created=b.time_created,
                    noncurrent_since=b.time_deleted,
                )
                for b in blobs
                if b.name == name
            ]

        return sorted(self._retrying(f"versions {name}", listing), key=lambda v: v.generation)

    def read_version(self, name: str, generation: int) -> StoredObject | None:
        blob = self._retrying(
            f"stat {name}#{generation}",
            lambda: self._bucket.get_blob(
                name, generation=generation, timeout=self.timeout, retry=None
            ),
        )
        if blob is None:
            return None
        pinned = self._bucket.blob(name, generation=generation)  # no precondition: it may be
        try:  # noncurrent, and a generation never changes its bytes
            data = self._retrying(
                f"read {name}#{generation}",
                lambda: pinned.download_as_bytes(timeout=self.timeout, retry=None),
            )
        except api_exceptions.NotFound:
            return None  # deleted by the lifecycle rule meanwhile
        return StoredObject(info=self._info(blob), data=data)
