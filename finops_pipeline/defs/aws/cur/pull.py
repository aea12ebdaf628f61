"""AWS Cost and Usage Reports (legacy CUR and CUR 2.0) -> cost_daily: find the month's latest
manifest, fetch exactly the files it lists, and hand them to the DuckDB rollup.

The manifest is the only truth about a delivery: old assemblies and re-delivered files sit beside
the new ones, so reading a folder by glob would count a month twice. A refresh replaces the whole
month with what the latest manifest lists, the previous month included when AWS re-delivers it.

Files are streamed from S3 to a private temporary directory (s3transfer writes in chunks, never the
whole object in memory), read there by DuckDB, and removed when the partition is written or the pull
fails. The directory is `<data_dir>/tmp/cur-<pid>-<random>` (the system's temporary directory without a
data_dir); one left behind by a killed process (its pid no longer alive) is removed by the next pull.
A `local_dir` (a synced copy of the bucket) is read in place.

A manifest is trusted only inside the report's own location: every file it lists must resolve under
`<bucket>/<prefix>/<report>/` (or `<local_dir>/<prefix>/<report>/`), and no file may be listed twice.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import duckdb

from finops_pipeline.config import Account
from finops_pipeline.defs.aws.cur import normalize
from finops_pipeline.defs.aws.session import aws_client
from finops_pipeline.diagnosis import ERROR, PENDING, Diagnosis, ProviderError
from finops_pipeline.http_budget import Deadline
from finops_pipeline.lake import partition_metadata
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import month_bounds
from finops_pipeline.workdir import WorkSession, copy_to_parquet  # the private download directory and connection, shared with the other downloading pulls

SOURCE = "cur"
# Bounded memory per refresh: DuckDB spills past this to the temporary directory, so a month of any size
# stays under it (plus ~300 MB of Python, buffers and DuckDB's overshoot): 1400MB peaked at 1,574 MiB on a
# 40-million-line real-shaped month, 1200MB keeps it under 1.5 GB (see docs/aws_cur.md).
# FINOPS_CUR_MEMORY_LIMIT (a DuckDB size like "3GB") overrides it.
DUCKDB_MEMORY_LIMIT = "1200MB"

# s3transfer streams ranged GETs to disk in chunks; a few in flight keeps memory flat.
TRANSFER_SETTINGS = {"multipart_chunksize": 16 * 1024 * 1024, "max_concurrency": 4, "max_io_queue": 32}


def memory_limit() -> str:
    """The CUR rollup's DuckDB memory limit: FINOPS_CUR_MEMORY_LIMIT, else DUCKDB_MEMORY_LIMIT."""
    return os.environ.get("FINOPS_CUR_MEMORY_LIMIT") or DUCKDB_MEMORY_LIMIT


# --- where the report lives -------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime
    etag: str
    size: int


class Store(Protocol):
    """A bucket, or a local directory holding a synced copy of one."""

    calls: int

    def describe(self, key: str) -> str: ...
    def stat(self, key: str) -> StoredObject | None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def fetch(self, key: str, target: Path) -> Path: ...


class S3Store:
    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket
        self.calls = 0  # S3 operations issued (a download counts once, however many ranged GETs it takes)

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def stat(self, key: str) -> StoredObject | None:
        # Listing the exact key (a narrow prefix) answers "absent" without a 403-vs-404 ambiguity on HEAD.
        self.calls += 1
        response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=5)
        for item in response.get("Contents", []):
            if item["Key"] == key:
                return StoredObject(key, item["LastModified"], item.get("ETag", "").strip('"'), item.get("Size", 0))
        return None

    def read_bytes(self, key: str) -> bytes:
        self.calls += 1
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def fetch(self, key: str, target: Path) -> Path:
        # boto3 here, not at module level: the definitions import this module and must load cheaply.
        from boto3.exceptions import RetriesExceededError as Boto3RetriesExceeded
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import ClientError
        from s3transfer.exceptions import RetriesExceededError

        self.calls += 1
        try:
            try:
                self.client.download_file(self.bucket, key, str(target), Config=TransferConfig(**TRANSFER_SETTINGS))
            except (RetriesExceededError, Boto3RetriesExceeded) as exc:  # s3transfer's own retries of a broken stream: the last failure is the news
                raise exc.last_exception from exc
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise _missing_file(self.describe(key)) from exc
            raise
        return target


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.calls = 0  # no API involved

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def stat(self, key: str) -> StoredObject | None:
        path = self.root / key
        if not path.is_file():
            return None
        info = path.stat()
        return StoredObject(key, datetime.fromtimestamp(info.st_mtime, timezone.utc), f"{info.st_mtime_ns}-{info.st_size}", info.st_size)

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def fetch(self, key: str, target: Path) -> Path:
        path = self.root / key
        if not path.is_file():
            raise _missing_file(str(path))
        return path  # read in place


def open_store(account: Account, deadline: Deadline | None = None) -> Store:
    settings = account.settings
    if settings.get("local_dir"):
        root = Path(settings["local_dir"]).expanduser()
        if not root.is_dir():
            raise ProviderError(Diagnosis(
                "aws.cur_local_dir_missing", ERROR, f"The CUR directory {root} does not exist.",
                "Set local_dir in the account settings to the directory your bucket sync writes to (e.g. the target of "
                "`aws s3 sync s3://<bucket>/<prefix> ...`), or use bucket instead.", str(root)))
        return LocalStore(root)
    return S3Store(aws_client(account, "s3", deadline=deadline), settings["bucket"])


# --- manifests --------------------------------------------------------------------------------------

def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def manifest_key(account: Account, billing_period: str) -> str:
    """Where AWS writes the month's manifest, for legacy CUR and for CUR 2.0 (Data Exports)."""
    settings = account.settings
    prefix, report = settings.get("prefix", ""), settings["report_name"]
    if settings.get("cur_version", "cur2") == "legacy":
        start, end = month_bounds(billing_period)
        return _join(prefix, report, f"{start:%Y%m%d}-{end:%Y%m%d}", f"{report}-Manifest.json")
    return _join(prefix, report, "metadata", f"BILLING_PERIOD={billing_period}", f"{report}-Manifest.json")


@dataclass(frozen=True)
class Manifest:
    billing_period: str
    key: str
    last_modified: datetime
    etag: str
    assembly_id: str
    data_keys: tuple[str, ...]


def report_root(account: Account) -> str:
    """The key prefix every file of this report lives under: `<prefix>/<report>/`."""
    return _join(account.settings.get("prefix", ""), account.settings["report_name"]) + "/"


def parse_manifest(document: bytes, key: str, stored: StoredObject, billing_period: str, cur_version: str, where: str,
                   *, bucket: str | None = None, root: str = "") -> Manifest:
    """Legacy: assemblyId + reportKeys (bucket keys). CUR 2.0: executionId + dataFiles (s3:// URIs).

    Every listed file must resolve inside `root` (the report's `<prefix>/<report>/`) of `bucket` (any bucket
    name for a local copy, which has none), and appear once.
    """
    try:
        data = json.loads(document)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ProviderError(Diagnosis(
            "aws.cur_manifest_invalid", ERROR, f"The CUR manifest {where} is not valid JSON ({exc}).",
            "The delivery is incomplete or was overwritten by something else; wait for AWS's next delivery (or re-sync "
            "the local copy). If it persists, recreate the export in Billing and Cost Management -> Data Exports.", where)) from exc
    field = "reportKeys" if cur_version == "legacy" else "dataFiles"
    files = data.get(field)
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ProviderError(Diagnosis(
            "aws.cur_manifest_invalid", ERROR, f"The CUR manifest {where} has no '{field}' list.",
            "Check cur_version in the account settings ('legacy' manifests list reportKeys, 'cur2' manifests list "
            "dataFiles); this manifest looks like the other kind." , where))
    keys = tuple(_confined_key(f, bucket, root, where) for f in files)
    seen: set[str] = set()
    for reference, item in zip(files, keys):
        if item in seen:
            raise _outside(where, reference, "is listed twice; reading it twice would count its costs twice")
        seen.add(item)
    assembly = str(data.get("assemblyId") or data.get("executionId") or stored.etag)
    period = data.get("billingPeriod")
    if cur_version == "legacy" and isinstance(period, dict) and str(period.get("start", ""))[:6] not in ("", billing_period.replace("-", "")):
        raise ProviderError(Diagnosis(
            "aws.cur_manifest_invalid", ERROR, f"The CUR manifest {where} is for billing period {period.get('start')}, not {billing_period}.",
            "Check prefix and report_name in the account settings.", where))
    return Manifest(billing_period, key, stored.last_modified, stored.etag, assembly, keys)


def _confined_key(reference: str, bucket: str | None, root: str, where: str) -> str:
    """The bucket key a manifest entry names, refused unless it lies inside the report's location."""
    key = reference
    if reference.startswith("s3://"):
        named_bucket, _, key = reference[5:].partition("/")
        if bucket is not None and named_bucket != bucket:
            raise _outside(where, reference, f"is in bucket '{named_bucket}', not the configured '{bucket}'")
    parts = key.split("/")
    if key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts) or "\x00" in key:
        raise _outside(where, reference, "is not a plain relative key (an absolute path, '..', '.', '//' or a backslash)")
    if not key.startswith(root):
        raise _outside(where, reference, f"lies outside the report's location '{root}' (another report's or another folder's file)")
    return key


def _outside(where: str, reference: str, problem: str) -> ProviderError:
    return ProviderError(Diagnosis(
        "aws.cur_manifest_invalid", ERROR,
        f"The CUR manifest {where} lists the file {reference!r}, which {problem}. Nothing was read; the month keeps its last "
        "good data.",
        "A manifest lists only its own report's files, once each: something other than AWS wrote or edited it. Check who can "
        "write to the export's prefix, then wait for AWS's next delivery (or re-sync the local copy).",
        f"manifest {where}, file {reference}"[:600]))


def latest_manifest(store: Store, account: Account, billing_period: str) -> Manifest:
    key = manifest_key(account, billing_period)
    stored = store.stat(key)
    if stored is None:
        from finops_pipeline.defs.aws.cur.source import NO_DATA as advice
        raise ProviderError(Diagnosis(
            "aws.cur_manifest_missing", PENDING,
            f"No CUR manifest for {billing_period} at {store.describe(key)}: no report has been delivered for this month yet, "
            f"or prefix/report_name/cur_version do not match the export.",
            advice.fix + " Check that prefix, report_name and cur_version in the account settings match the export's S3 path.",
            store.describe(key)))
    return parse_manifest(store.read_bytes(key), key, stored, billing_period, account.settings.get("cur_version", "cur2"),
                          store.describe(key), bucket=getattr(store, "bucket", None), root=report_root(account))


def _missing_file(where: str) -> ProviderError:
    return ProviderError(Diagnosis(
        "aws.cur_file_missing", ERROR, f"The CUR manifest lists {where}, but that file is not there.",
        "The delivery is incomplete (AWS writes the manifest after the data, so this usually means the files were deleted "
        "or a bucket lifecycle rule expired them, or the local copy is partly synced). Re-sync or wait for the next "
        "delivery; the month's last good data stays in place.", where))


# --- fetching ---------------------------------------------------------------------------------------

def fetch_files(store: Store, manifest: Manifest, workdir: Path) -> tuple[list[normalize.CurFile], int]:
    """Every file the manifest lists, on local disk (zip members extracted); returns them and the bytes fetched."""
    files = []
    fetched = 0
    for index, key in enumerate(manifest.data_keys):
        name = key.rsplit("/", 1)[-1]
        path = store.fetch(key, workdir / f"{index:05d}-{name}")
        fetched += path.stat().st_size
        if name.lower().endswith(".zip"):
            path = _unzip(path, key, workdir / f"{index:05d}-{name[:-4]}", remove=path.parent == workdir)
        files.append(normalize.CurFile(key, path))
    return files, fetched


def _unzip(archive: Path, key: str, target: Path, remove: bool) -> Path:
    """Legacy CUR's .csv.zip holds one CSV; extract it by streaming (DuckDB cannot read zip)."""
    try:
        with zipfile.ZipFile(archive) as handle:
            members = [m for m in handle.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise normalize.CurFileError(key, f"holds {len(members)} files; a CUR zip holds exactly one CSV")
            with handle.open(members[0]) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1024 * 1024)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise normalize.CurFileError(key, f"is corrupt or truncated and cannot be unzipped ({exc})") from exc
    finally:
        if remove:
            archive.unlink(missing_ok=True)
    return target


def file_error(exc: normalize.CurFileError, manifest: Manifest, store: Store) -> ProviderError:
    where = store.describe(exc.key) if "/" in exc.key else exc.key
    if exc.column and exc.sample is not None:
        return ProviderError(Diagnosis(
            "aws.cur_bad_value", ERROR, f"The CUR file {where} {exc.problem}. Nothing was written; the month keeps its last good data.",
            f"AWS writes only numbers DECIMAL(38,10) holds in {exc.column}, and dates inside the billing period (corrections "
            "aside): the file was changed after delivery (a sync, a script, a transformation). Restore AWS's original file or "
            "wait for AWS's next delivery of this month.",
            f"file {where}, column {exc.column}, sample {exc.sample!r}; manifest {manifest.key}, assembly {manifest.assembly_id}"[:600]))
    if exc.column:
        return ProviderError(Diagnosis(
            "aws.cur_column_missing", ERROR, f"The CUR file {where} {exc.problem}.",
            "Edit the export (Billing and Cost Management -> Data Exports) to include the standard cost columns, or check that "
            "report_name points at a Cost and Usage Report and not another export; the month's last good data stays in place.",
            f"manifest {manifest.key}, assembly {manifest.assembly_id}"))
    return ProviderError(Diagnosis(
        "aws.cur_file_unreadable", ERROR, f"The CUR file {where} {exc.problem}.",
        "The file was damaged in delivery or in the sync: re-sync it, or wait for AWS's next delivery of this month. The "
        "month's last good data stays in place.", f"manifest {manifest.key}, assembly {manifest.assembly_id}"))


# --- the pull ---------------------------------------------------------------------------------------

def pull_cur(account: Account, billing_period: str, data_dir: Path | None = None) -> Pull:
    """Fetch the month's latest delivery and return a Pull whose `produce` writes the partition with DuckDB.

    All S3 requests of the pull share one deadline (give_up_after_seconds).
    """
    deadline = Deadline.for_account(account)
    work = WorkSession(data_dir)
    with work.releasing_on_failure(normalize.CurFileError, lambda exc: file_error(exc, manifest, store)):
        store = open_store(account, deadline)
        manifest = latest_manifest(store, account, billing_period)
        files, fetched = fetch_files(store, manifest, work.dir)
        groups = normalize.group_files(files)
        connection = work.connect(memory_limit())
        # One read of the files: the daily pre-aggregate into temporary tables, the totals from them.
        staged, totals = _checked(lambda: normalize.stage_and_total(connection, groups, billing_period), connection, groups, manifest, store)

    ingested_at = datetime.now(timezone.utc)
    layouts = normalize.describe_layouts(groups)
    details = {
        "manifest": store.describe(manifest.key),
        "manifest_last_modified": manifest.last_modified.isoformat(),
        "assembly_id": manifest.assembly_id,
        "files": len(files),
        "bytes_fetched": fetched,
        "line_items": totals.line_items,
        "line_items_by_type": dict(sorted(totals.by_type.items())),
        "unknown_line_item_types": totals.unknown_types,
        "unblended_by_currency": {c: str(v) for c, v in sorted(totals.unblended.items())},
        **layouts,
    }

    def produce(target: Path) -> None:
        try:
            select = normalize.rollup_sql(
                normalize.daily_sql(groups, staged) if groups else _empty_daily(),
                account_id=account.settings["account_id"], account_name=account.name, account_key=account.key,
                billing_period=billing_period, source_updated_at=manifest.last_modified, ingested_at=ingested_at,
                # Only when daily rows can meet in one grain (tags that normalize alike, several groups or
                # descriptions: what the footers cannot rule out) and do in the data.
                reaggregate=(normalize.needs_reaggregation(groups) or normalize.descriptions_vary(groups))
                and not normalize.grain_unique(connection, groups, staged))
            metadata = partition_metadata(totals.billed, {"cur_manifest": manifest.key, "cur_assembly_id": manifest.assembly_id})
            try:
                _checked(lambda: copy_to_parquet(connection, select, target, metadata), connection, groups, manifest, store)
            except normalize.CurFileError as exc:
                raise file_error(exc, manifest, store) from None
        finally:
            work.close()

    return Pull(source_totals=totals.billed, produce=produce, api_calls=store.calls, metadata=details)


def _checked(run, connection, groups, manifest: Manifest, store: Store):
    """Run a query over the files; on a DuckDB error, name the file that caused it."""
    try:
        return run()
    except duckdb.Error:
        culprit = normalize.locate_bad_file(connection, groups)
        if culprit is not None:
            raise culprit from None
        raise


def _empty_daily() -> str:
    """A delivery that lists no files (a month without usage) still writes an empty, well-typed partition."""
    money = normalize.MONEY_SQL
    columns = {"day": "DATE", **{n: "VARCHAR" for n in (*normalize.GRAIN, "tags", *normalize.LOOKUP_COLUMNS)}, "billed": money,
               "effective": money, "list": money, "contracted": money, "usage_amount": money, "description": "VARCHAR",
               "estimated": "BOOLEAN"}
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in columns.items()) + " WHERE false"
