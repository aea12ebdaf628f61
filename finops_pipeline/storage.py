"""Where the lake's files live: a local directory, or a prefix in S3, Azure Blob Storage or Google Cloud Storage.

A location is a `Path` (local) or a URL string: `s3://bucket/prefix`, `az://container/prefix`
(also `abfs://`, `abfss://`), `gs://bucket/prefix` (also `gcs://`). Every operation the lake needs
(atomic replace, read, list, exists, delete, DuckDB access) works on both, so lake.py has one code
path per operation with the backend chosen here.

Atomic replace. Local: a temporary file beside the target, fsync, `os.replace`, fsync of the
directory (the rename is atomic on POSIX). Object storage: the content is written and checked in a
local staging file, then sent to the final name in one upload (a PUT, or a multipart upload / block
list completed in one request for a large file): S3, Azure Blob and GCS make an object visible
whole when that request completes, so a reader gets the old object or the new one, never a mix, and
a listing never shows a temporary name (there are none in the bucket). A crash before the upload
completes leaves the previous object; the staging file is removed by the next writer once its
process is gone, like a local temporary.

Backends (fsspec filesystems, so DuckDB can read them through `register_filesystem`, without the
httpfs extension):
- S3: pyarrow's S3FileSystem (the AWS SDK for C++, wrapped by fsspec's ArrowFSWrapper). s3fs cannot
  be installed beside botocore 1.44 (its aiobotocore pins older botocore releases exactly).
- Azure Blob: adlfs, with a bounded azure-core retry policy.
- GCS: gcsfs.

Credentials come from each provider's usual chain (AWS: environment, profile, web identity,
instance role; Azure: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_NAME with
AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, else DefaultAzureCredential; GCS: Application
Default Credentials), never from files in the repository. Endpoints (moto, Azurite, a private
endpoint) and timeouts come from the environment variables of `StorageSettings`.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field

Location = Path | str
# URL scheme -> backend
SCHEMES = {"s3": "s3", "s3a": "s3", "az": "az", "abfs": "az", "abfss": "az", "gs": "gcs", "gcs": "gcs"}
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<path>.*)$")
_TMP_MAX_AGE_SECONDS = 24 * 3600


class StorageError(OSError):
    """An object-storage location that cannot be used (unknown scheme, backend missing, upload not whole)."""


class StorageSettings(BaseModel):
    """Endpoints and time limits of the object-storage clients (environment variables, read at first use).

    FINOPS_LAKE_S3_ENDPOINT (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL), FINOPS_LAKE_AZURE_ENDPOINT
    (the blob endpoint with the account, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1),
    FINOPS_LAKE_GCS_ENDPOINT; FINOPS_LAKE_CONNECT_TIMEOUT and FINOPS_LAKE_REQUEST_TIMEOUT (seconds),
    FINOPS_LAKE_MAX_ATTEMPTS (tries per request, retries included); FINOPS_LAKE_STAGING_DIR (local
    staging files of uploads; default the system's temporary directory); FINOPS_LAKE_WHOLE_READ_MAX_BYTES
    (files up to this size are read by DuckDB in one request) and FINOPS_LAKE_READ_CACHE_SECONDS (how
    long file sizes and times are kept for readers), see `_WholeObjectReads`.
    """

    model_config = {"frozen": True}

    s3_endpoint: str | None = None
    s3_region: str | None = None
    azure_endpoint: str | None = None
    gcs_endpoint: str | None = None
    connect_timeout: float = Field(10.0, gt=0)
    request_timeout: float = Field(60.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=10)
    staging_dir: str | None = None
    whole_read_max_bytes: int = Field(256 * 1024 * 1024, ge=0)
    read_cache_seconds: float = Field(5.0, ge=0)

    @classmethod
    def from_env(cls) -> StorageSettings:
        env = os.environ
        values: dict[str, Any] = {
            "s3_endpoint": env.get("FINOPS_LAKE_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            "s3_region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "azure_endpoint": env.get("FINOPS_LAKE_AZURE_ENDPOINT"),
            "gcs_endpoint": env.get("FINOPS_LAKE_GCS_ENDPOINT"),
            "staging_dir": env.get("FINOPS_LAKE_STAGING_DIR"),
        }
        for field, name in (("connect_timeout", "FINOPS_LAKE_CONNECT_TIMEOUT"), ("request_timeout", "FINOPS_LAKE_REQUEST_TIMEOUT"),
                            ("max_attempts", "FINOPS_LAKE_MAX_ATTEMPTS"), ("whole_read_max_bytes", "FINOPS_LAKE_WHOLE_READ_MAX_BYTES"),
                            ("read_cache_seconds", "FINOPS_LAKE_READ_CACHE_SECONDS")):
            if env.get(name):
                values[field] = env[name]
        return cls(**values)


# --- locations ---------------------------------------------------------------------------------

def is_remote(location: Location) -> bool:
    """True for an object-storage URL (a str with a known scheme); a Path or a plain string is local."""
    if isinstance(location, Path):
        return False
    match = _URL.match(str(location))
    if match is None:
        return False
    if match["scheme"] not in SCHEMES:
        raise StorageError(f"unsupported storage URL scheme '{match['scheme']}://' (use {', '.join(sorted(SCHEMES))} or a local path)")
    return True


def as_location(value: Location) -> Location:
    """A URL stays a string (without a trailing '/'); anything else becomes a Path.

    A URL that went through `Path()` (`s3:/bucket/...`: one slash left) is refused rather than
    written to a local directory named `s3:`."""
    if isinstance(value, str) and is_remote(value):
        return value.rstrip("/")
    path = Path(value)
    scheme = path.parts[0].rstrip(":") if path.parts and path.parts[0].endswith(":") else None
    if scheme in SCHEMES:
        raise StorageError(f"'{value}' is an object-storage URL made into a local path; pass the URL as a string ({scheme}://...)")
    return path


def resolve(value: Location) -> Location:
    """`as_location`, with a local path made absolute (what FINOPS_DATA_DIR / --data-dir give)."""
    location = as_location(value)
    return location.absolute() if isinstance(location, Path) else location


def work_dir(location: Location) -> Path:
    """The local directory for what cannot live in a bucket: the catalog's DuckDB file, the serving
    compaction lock, the API throttle state, download and cache files, the dashboard HTML.

    A local lake is its own work directory (so nothing moves). A remote lake's is FINOPS_WORK_DIR,
    else `./data`. It is per host: a second host needs its own (and see docs/deploy.md on compaction)."""
    if not is_remote(location):
        return Path(location)
    return Path(os.environ.get("FINOPS_WORK_DIR") or "data").absolute()


def join(location: Location, *parts: str) -> Location:
    """`location / part / ...` for a Path or a URL."""
    location = as_location(location)
    if isinstance(location, Path):
        return location.joinpath(*parts)
    return "/".join([location, *(p.strip("/") for p in parts)])


def name(location: Location) -> str:
    return Path(location).name if not is_remote(location) else str(location).rstrip("/").rsplit("/", 1)[-1]


def parent(location: Location) -> Location:
    return Path(location).parent if not is_remote(location) else str(location).rstrip("/").rsplit("/", 1)[0]


def relative_parts(location: Location, root: Location) -> tuple[str, ...]:
    """The path components of `location` below `root`."""
    if not is_remote(location):
        return Path(location).relative_to(Path(root)).parts
    prefix = str(root).rstrip("/") + "/"
    if not str(location).startswith(prefix):
        raise ValueError(f"{location} is not under {root}")
    return tuple(str(location)[len(prefix):].split("/"))


def _split(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> ("s3", "bucket/key"): the backend and the path its filesystem takes."""
    match = _URL.match(url)
    if match is None or match["scheme"] not in SCHEMES:
        raise StorageError(f"not an object-storage URL: {url}")
    return SCHEMES[match["scheme"]], match["path"].strip("/")


def _url(backend_url: str, fs_path: str) -> str:
    """The URL (in the scheme the caller used) of a path returned by the backend's filesystem."""
    scheme = _URL.match(backend_url)["scheme"]  # type: ignore[index]
    return f"{scheme}://{fs_path.strip('/')}"


# --- filesystems -------------------------------------------------------------------------------

def filesystem(location: Location, settings: StorageSettings | None = None) -> tuple[Any, str]:
    """The fsspec filesystem that holds `location`, and the path to give it."""
    settings = settings or StorageSettings.from_env()
    if not is_remote(location):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), str(Path(location).absolute())
    backend, path = _split(str(location))
    return _filesystem(backend, settings), path


class _WholeObjectReads:
    """Mixin for the backends' filesystems, for readers (DuckDB, pyarrow) of the lake.

    A file opened for reading that is not larger than `whole_read_max_bytes` is fetched whole, in
    one request, at its first read. One request is one version of the object, so a scan never mixes
    the old and the new version of a partition replaced meanwhile (ranged reads of a replaced object
    could), and a Parquet file costs one round trip instead of one per column chunk. Larger files are
    read by ranges: only immutable, never-rewritten names (the serving layer's versions) should be
    that large.

    File metadata (size, modification time) is kept `read_cache_seconds` (also when a listing gave
    it): DuckDB asks a file's size and time several times per scan, each a request otherwise. Our own
    writes and deletes drop it at once; a change by another process is seen after that delay.
    """

    whole_read_max_bytes: int = 256 * 1024 * 1024
    read_cache_seconds: float = 5.0

    def _read_whole(self, path: str) -> bytes:
        return self.cat_file(path)  # type: ignore[attr-defined]

    def _info_cache(self) -> tuple[threading.Lock, dict[str, tuple[float, dict[str, Any]]]]:
        state = self.__dict__.get("_finops_info_cache")
        if state is None:
            state = self.__dict__.setdefault("_finops_info_cache", (threading.Lock(), {}))
        return state

    def _remember(self, entries: list[dict[str, Any]]) -> None:
        lock, cache = self._info_cache()
        now = time.monotonic()
        with lock:
            if len(cache) > 100_000:
                cache.clear()
            for entry in entries:
                if entry.get("type") == "file":
                    cache[self._strip_protocol(entry["name"]).strip("/")] = (now, entry)  # type: ignore[attr-defined]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        key = self._strip_protocol(path).strip("/")  # type: ignore[attr-defined]
        lock, cache = self._info_cache()
        with lock:
            hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.read_cache_seconds:
            return dict(hit[1])
        entry = super().info(path, **kwargs)  # type: ignore[misc]
        self._remember([entry])
        return entry

    def modified(self, path: str) -> Any:
        entry = self.info(path)
        return entry.get("mtime") or entry.get("last_modified") or entry.get("updated")

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        detail = kwargs.pop("detail", False)
        found = super().glob(path, maxdepth=maxdepth, detail=True, **kwargs)  # type: ignore[misc]
        self._remember(list(found.values()))
        return found if detail else list(found)

    def invalidate_cache(self, path: str | None = None) -> None:
        lock, cache = self._info_cache()
        with lock:
            if path is None:
                cache.clear()
            else:
                cache.pop(self._strip_protocol(path).strip("/"), None)  # type: ignore[attr-defined]
        super().invalidate_cache(path)  # type: ignore[misc]

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if mode == "rb" and int(self.info(path)["size"]) <= self.whole_read_max_bytes:
            stripped = self._strip_protocol(path)  # type: ignore[attr-defined]
            return _WholeFile(lambda: self._read_whole(stripped))
        return super()._open(path, mode, *args, **kwargs)  # type: ignore[misc]


class _WholeFile(io.RawIOBase):
    """A read-only file whose content is fetched whole at the first read (DuckDB opens files it then
    serves from its own cache without reading them).

    DuckDB's threads share one handle per file and read it as `seek(offset)` then `read(n)`, two calls:
    with one shared position, another thread's seek in between made a read return the wrong bytes
    ("only 17804 bytes returned" on a serving file of several row groups). So the position is kept
    per thread; the content, fetched once under a lock, never changes."""

    def __init__(self, fetch: Callable[[], bytes]) -> None:
        super().__init__()
        self._fetch = fetch
        self._content: bytes | None = None
        self._lock = threading.Lock()
        self._positions: dict[int, int] = {}

    def _loaded(self) -> bytes:
        if self._content is None:
            with self._lock:
                if self._content is None:
                    self._content = bytes(self._fetch())
        return self._content

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        thread = threading.get_ident()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._positions.get(thread, 0) + offset
        else:
            position = len(self._loaded()) + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._positions[thread] = position
        return position

    def tell(self) -> int:
        return self._positions.get(threading.get_ident(), 0)

    def read(self, size: int = -1) -> bytes:
        content = self._loaded()
        thread = threading.get_ident()
        start = min(self._positions.get(thread, 0), len(content))
        end = len(content) if size is None or size < 0 else min(start + size, len(content))
        self._positions[thread] = end
        return content[start:end]

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


@functools.lru_cache(maxsize=16)
def _filesystem(backend: str, settings: StorageSettings) -> Any:
    """One client per backend and settings (the clients keep connection pools)."""
    try:
        if backend == "s3":
            return _s3(settings)
        if backend == "az":
            return _azure(settings)
        return _gcs(settings)
    except ImportError as exc:  # the [cloud] extra is not installed
        raise StorageError(f"the {backend} lake needs the package '{exc.name}': pip install 'finops_pipeline[cloud]'") from exc


def _s3(settings: StorageSettings) -> Any:
    from fsspec.implementations.arrow import ArrowFSWrapper
    from pyarrow import fs as pafs

    class S3ArrowFileSystem(_WholeObjectReads, ArrowFSWrapper):
        """pyarrow's S3 client under the s3:// protocol, so DuckDB's registered filesystem matches s3:// URLs."""

        protocol = ("s3", "s3a")
        whole_read_max_bytes = settings.whole_read_max_bytes
        read_cache_seconds = settings.read_cache_seconds

        def _read_whole(self, path: str) -> bytes:
            return _s3_get(settings, path)

        def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False, **kwargs: Any) -> Any:
            """One recursive listing (ListObjectsV2 pages) instead of one request per directory level."""
            path = self._strip_protocol(path).rstrip("/")
            try:
                infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=True))
            except (FileNotFoundError, NotADirectoryError):
                infos = []
            depth = path.count("/")
            found = {}
            for info in infos:
                entry = self._make_entry(info)
                if (entry["type"] == "directory" and not withdirs) or (maxdepth is not None and entry["name"].count("/") - depth > maxdepth):
                    continue
                found[entry["name"]] = entry
            if not found and self.isfile(path):
                found[path] = self.info(path)
            return {name: found[name] for name in sorted(found)} if detail else sorted(found)

    options: dict[str, Any] = {
        "connect_timeout": settings.connect_timeout,
        "request_timeout": settings.request_timeout,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=settings.max_attempts),
    }
    if settings.s3_region:
        options["region"] = settings.s3_region
    if settings.s3_endpoint:
        options["endpoint_override"] = settings.s3_endpoint
        options["scheme"] = "http" if settings.s3_endpoint.startswith("http://") else "https"
    return S3ArrowFileSystem(pafs.S3FileSystem(**options), skip_instance_cache=True)


@functools.lru_cache(maxsize=16)
def _s3_client(settings: StorageSettings) -> Any:
    """boto3's S3 client for whole-object GETs and single PUTs (timeouts, standard bounded retries)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=settings.connect_timeout, read_timeout=settings.request_timeout,
                    retries={"total_max_attempts": settings.max_attempts, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region, config=config)


def _azure(settings: StorageSettings) -> Any:
    from adlfs import AzureBlobFileSystem
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    env = os.environ
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING")
    account = env.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not connection_string and not account:
        raise StorageError("an az:// lake needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME "
                           "(with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN, or an Azure identity for DefaultAzureCredential)")
    client_options = {
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=settings.max_attempts - 1),
        "connection_timeout": settings.connect_timeout,
        "read_timeout": settings.request_timeout,
    }

    class BoundedAzureBlobFileSystem(_WholeObjectReads, AzureBlobFileSystem):
        """adlfs with the client built here: bounded retries and timeouts, and an endpoint override (Azurite)."""

        whole_read_max_bytes = settings.whole_read_max_bytes
        read_cache_seconds = settings.read_cache_seconds

        def do_connect(self) -> None:
            if connection_string:
                self.service_client = BlobServiceClient.from_connection_string(connection_string, **client_options)
                return
            url = settings.azure_endpoint or f"https://{account}.blob.core.windows.net"
            sas = env.get("AZURE_STORAGE_SAS_TOKEN")
            key = env.get("AZURE_STORAGE_ACCOUNT_KEY")
            if sas:  # as the credential, not in the URL: error messages may show the URL
                self.service_client = BlobServiceClient(url, credential=sas.lstrip("?"), **client_options)
                return
            if key:
                credential: Any = {"account_name": account, "account_key": key}
            else:
                from azure.identity.aio import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self.service_client = BlobServiceClient(url, credential=credential, **client_options)

    # The time limits are the client's (every call); adlfs's own per-call timeouts stay unset.
    return BoundedAzureBlobFileSystem(account_name=account or "from-connection-string", skip_instance_cache=True)


def _gcs(settings: StorageSettings) -> Any:
    # gcsfs's plain filesystem: its package default (ExtendedGcsFileSystem) first asks a bucket's type over
    # gRPC (zonal / hierarchical buckets), which waits a minute on an endpoint that does not speak it.
    from gcsfs.core import DEFAULT_PROJECT, GCSFileSystem

    # An endpoint override (an emulator) without credentials: anonymous, never a metadata-server lookup.
    token = "anon" if settings.gcs_endpoint and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") else None

    class WholeReadGCSFileSystem(_WholeObjectReads, GCSFileSystem):
        whole_read_max_bytes = settings.whole_read_max_bytes
        read_cache_seconds = settings.read_cache_seconds

    # gcsfs retries a failed request a bounded number of times itself (its retry_request decorator).
    return WholeReadGCSFileSystem(endpoint_url=settings.gcs_endpoint, requests_timeout=settings.request_timeout, token=token,
                         project=os.environ.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT, skip_instance_cache=True)


def register_duckdb(connection: Any, location: Location) -> None:
    """Let a DuckDB connection read `location`'s URLs (s3://..., az://..., gs://...) through our fsspec
    filesystem: no httpfs extension needed. A no-op for a local location.

    It also turns off DuckDB's external file cache for the connection's database: that cache would keep
    byte ranges of a remote file across queries, validated by its modification time, which object
    storage gives to the second, so a partition replaced within the same second could be read half
    from the old version. Our filesystem reads a file whole in one request anyway; local files are
    not cached by DuckDB (cache_local_files is off), so local reads are unaffected.
    """
    if not is_remote(location):
        return
    fs, _ = filesystem(location)
    name = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]  # DuckDB names it by its first protocol
    if name in connection.list_filesystems():  # this or another client of the backend (other settings): use this one
        connection.unregister_filesystem(name)
    connection.register_filesystem(fs)
    connection.execute("SET enable_external_file_cache = false")


def connect_duckdb(lake: Location | None = None, database: str = ":memory:", read_only: bool = False,
                   config: Mapping[str, Any] | None = None) -> Any:
    """Every DuckDB session of the pipeline: in UTC, and able to read `lake`'s URLs when it is remote.

    A TIMESTAMPTZ's `::DATE`, `date_trunc` and `strftime` follow the session's TimeZone, which DuckDB
    takes from the host (TZ): on a host in New York, 2026-11-01T00:00Z`::DATE` is 2026-10-31. FOCUS
    days and billing periods are UTC ones. (The setting cannot go in `config`: DuckDB refuses it
    before its ICU extension is loaded.)
    """
    import duckdb  # the file layer itself does not need DuckDB

    connection = duckdb.connect(database, read_only=read_only, config=dict(config or {}))
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if lake is not None:
            register_duckdb(connection, lake)
    except BaseException:
        connection.close()
        raise
    return connection


def reset_clients() -> None:
    """Forget the cached clients (after the endpoint or credential variables changed, e.g. between tests)."""
    _filesystem.cache_clear()
    _s3_client.cache_clear()


# --- operations --------------------------------------------------------------------------------

def exists(location: Location) -> bool:
    if not is_remote(location):
        return Path(location).exists()
    fs, path = filesystem(location)
    return bool(fs.exists(path))


def open_read(location: Location) -> IO[bytes]:
    """A binary file object (FileNotFoundError when absent) over one version of the file.

    Locally the open handle keeps its version whatever replaces the name. Remotely the whole object
    is read in one request (see `read_bytes`): a file object doing several range requests could mix
    the old and the new version of an object replaced meanwhile.
    """
    if not is_remote(location):
        return open(location, "rb")  # noqa: SIM115 - the caller closes it
    return io.BytesIO(read_bytes(location))


def read_bytes(location: Location) -> bytes:
    """The whole file, one version of it: S3 in one GetObject, Azure in one download (the SDK pins the
    ETag across its chunks), GCS in one GET."""
    if not is_remote(location):
        return Path(location).read_bytes()
    backend, path = _split(str(location))
    if backend == "s3":
        return _s3_get(StorageSettings.from_env(), path)
    fs, path = filesystem(location)
    return fs.cat_file(path)


def _s3_get(settings: StorageSettings, path: str) -> bytes:
    """`bucket/key` in one GetObject. botocore retries getting the answer; a body cut or stalled midway is
    fetched again, up to `max_attempts` in all, then a StorageError (never a partial object)."""
    from botocore.exceptions import ReadTimeoutError, ResponseStreamingError
    from urllib3.exceptions import HTTPError as Urllib3Error

    bucket, _, key = path.partition("/")
    client = _s3_client(settings)
    for attempt in range(1, settings.max_attempts + 1):
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"s3://{path}") from exc
        try:
            with response["Body"] as body:
                return body.read()
        except (ReadTimeoutError, ResponseStreamingError, Urllib3Error, OSError) as exc:
            if attempt == settings.max_attempts:
                raise StorageError(f"s3://{path}: the download was cut or stalled mid-body {attempt} times "
                                   f"({type(exc).__name__}); the object is unchanged, read it again later") from exc
    raise AssertionError("unreachable")


def info(location: Location) -> dict[str, Any]:
    """size, mtime and `version`, what tells two versions of a file apart (a replaced partition), asked
    now (not from the readers' cache): size, mtime and inode locally; the ETag on S3 and Azure, the
    generation on GCS. FileNotFoundError when absent."""
    if not is_remote(location):
        stat = Path(location).stat()
        return {"size": stat.st_size, "mtime": stat.st_mtime, "version": f"{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ino}"}
    backend, path = _split(str(location))
    if backend == "s3":
        from botocore.exceptions import ClientError

        bucket, _, key = path.partition("/")
        try:
            head = _s3_client(StorageSettings.from_env()).head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(str(location)) from exc
            raise
        return {"size": int(head["ContentLength"]), "mtime": head["LastModified"].timestamp(), "version": head["ETag"].strip('"')}
    fs, path = filesystem(location)
    fs.invalidate_cache(path)
    entry = fs.info(path)
    if entry.get("type") == "directory":
        raise FileNotFoundError(str(location))
    return _entry_info(entry)


def _entry_info(entry: Mapping[str, Any]) -> dict[str, Any]:
    """size, mtime, version of an adlfs / gcsfs listing or info entry."""
    mtime = entry.get("last_modified") or entry.get("mtime") or entry.get("updated")
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    version = entry.get("etag") or entry.get("generation") or entry.get("md5Hash") or f"{entry.get('size')}-{mtime}"
    return {"size": int(entry["size"]), "mtime": mtime, "version": str(version).strip('"')}


def glob_info(location: Location, pattern: str) -> list[tuple[Location, dict[str, Any]]]:
    """`glob` with each file's `info`, from the listing itself where the backend gives it (one paginated
    listing on S3 and Azure, not a request per file)."""
    if not is_remote(location):
        found = []
        for path in glob(location, pattern):
            try:
                found.append((path, info(path)))
            except FileNotFoundError:  # replaced or removed since the listing
                continue
        return found
    backend, root = _split(str(location))
    wanted = pattern.split("/")

    def matches(relative: str) -> bool:
        parts = relative.split("/")
        return len(parts) == len(wanted) and not parts[-1].startswith(".") and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))

    if backend == "s3":
        bucket, _, prefix = root.partition("/")
        prefix = prefix + "/" if prefix else ""
        found = []
        pages = _s3_client(StorageSettings.from_env()).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                if matches(item["Key"][len(prefix):]):
                    found.append((f"{_URL.match(str(location))['scheme']}://{bucket}/{item['Key']}",  # type: ignore[index]
                                  {"size": int(item["Size"]), "mtime": item["LastModified"].timestamp(), "version": item["ETag"].strip('"')}))
        return sorted(found, key=lambda item: str(item[0]))
    fs, _ = filesystem(location)
    fs.invalidate_cache(root)
    entries = fs.glob(f"{root}/{pattern}", detail=True)
    return sorted(((_url(str(location), p), _entry_info(e)) for p, e in entries.items()
                   if e.get("type") != "directory" and matches(p.strip("/")[len(root) + 1:])), key=lambda item: str(item[0]))


def delete(location: Location, missing_ok: bool = True) -> None:
    if not is_remote(location):
        Path(location).unlink(missing_ok=missing_ok)
        return
    fs, path = filesystem(location)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
    finally:
        fs.invalidate_cache(path)


def glob(location: Location, pattern: str) -> list[Location]:
    """Files under `location` matching `pattern` ('*' within one path component), sorted."""
    if not is_remote(location):
        return sorted(Path(location).glob(pattern))
    fs, path = filesystem(location)
    found = fs.glob(f"{path}/{pattern}")
    return sorted(_url(str(location), p) for p in found if not name(p).startswith("."))


# --- atomic replace ----------------------------------------------------------------------------

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp(?P<suffix>\.wal)?$")


def temporary_name(target_name: str) -> str:
    """`.<target>.<host>.<pid>.<random>.tmp`: the writer's host and pid tell a later writer whether it is alive."""
    return f".{target_name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _process_start_time(pid: int) -> float | None:
    """When process `pid` started (Linux /proc), or None when that cannot be told."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, counted after the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _process_started_after(pid: int, moment: float) -> bool:
    """True when process `pid` started after `moment` (so it reused the pid of the writer that made the file)."""
    started = _process_start_time(pid)
    return started is not None and started > moment + 2


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """A temporary left by a writer that can no longer finish it.

    Ours (host and pid in the name): stale when that process is gone, or the pid now belongs to a
    process started after the file was made. Any temporary (other hosts, older names without a pid,
    DuckDB's `.tmp.wal` beside a temporary catalog): stale when untouched for a day.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if (now or time.time()) - stat.st_mtime > _TMP_MAX_AGE_SECONDS:
        return True
    match = _TEMP_NAME.match(path.name)
    if match is None or match["host"] != _HOST:
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    return not pid_alive(pid) or _process_started_after(pid, min(stat.st_mtime, stat.st_ctime))


def _remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove temporaries (and DuckDB `.wal` files of temporary catalogs) whose writer is dead or a day old."""
    removed = []
    for leftover in [*directory.glob(".*.tmp"), *directory.glob(".*.tmp.wal")]:
        if is_stale_temporary(leftover):
            try:
                leftover.unlink()
                removed.append(leftover)
            except FileNotFoundError:
                pass
    return removed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_dir(settings: StorageSettings | None = None) -> Path:
    """The local directory where uploads are written and checked before they are sent (mode 0700)."""
    settings = settings or StorageSettings.from_env()
    directory = Path(settings.staging_dir) if settings.staging_dir else Path(tempfile.gettempdir()) / f"finops-lake-staging-{os.getuid()}"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


@contextmanager
def atomic_replace(target: Location) -> Iterator[Path]:
    """Yield a local temporary path; when the block succeeds its content replaces `target` whole.

    Local target: the temporary is beside it (names start with '.' and end in '.tmp', so no
    '*.parquet' glob sees them), then fsync and one `os.replace`. A DuckDB database written there may
    leave `<temporary>.wal`; it goes with the temporary. Remote target: the temporary is in the
    staging directory, then one upload to the final name, whose size is checked. Either way an
    exception in the block (a failed check) or a crash leaves the previous target.
    """
    remote = is_remote(target)
    directory = staging_dir() if remote else Path(target).parent
    if not remote:
        directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    temporary = directory / temporary_name(name(target))
    try:
        yield temporary
        if remote:
            upload(temporary, str(target))
        else:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            _fsync_dir(directory)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def upload(local: Path, target: str) -> None:
    """Send a local file to `target` in one upload (atomic for readers) and check the stored size.

    S3: one PutObject (up to 5 GB; botocore sends a CRC32 checksum header that S3 verifies before it
    stores the object), so no multipart upload is ever left behind by a crash. Azure: adlfs's
    upload_blob with validate_content (an MD5 per request, verified by the service; one Put Blob up
    to 64 MB, else blocks committed by one Put Block List). GCS: gcsfs's upload (one request, or a
    resumable upload finalized at once). The size check after the upload catches what a server that
    does not verify checksums (moto) would store short; it cannot bring the previous object back.
    """
    backend, path = _split(target)
    size = local.stat().st_size
    if backend == "s3":
        bucket, _, key = path.partition("/")
        client = _s3_client(StorageSettings.from_env())
        with open(local, "rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=size)
        stored = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        filesystem(target)[0].invalidate_cache(path)
    else:
        fs, path = filesystem(target)
        # Azure: an MD5 with each request, checked by the service before it stores anything.
        fs.put_file(str(local), path, **({"validate_content": True} if backend == "az" else {}))
        fs.invalidate_cache(path)
        stored = int(fs.info(path)["size"])
    if stored != size:
        raise StorageError(f"{target}: stored {stored} bytes of {size}; the upload was not whole")
