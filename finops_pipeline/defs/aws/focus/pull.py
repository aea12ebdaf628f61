"""AWS FOCUS Data Exports -> cost_daily: the month's latest manifest, exactly its files, the shared FOCUS reader.

The delivery is CUR 2.0's (`<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/...` and
`<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` listing `dataFiles` as
s3:// URIs), so the store (S3 or a local copy), the manifest's confinement and dedupe, and the private
download directory are CUR's own code (defs/aws/cur/pull.py), imported, not copied. What the files
mean is the core's FOCUS reader (finops_pipeline.focus). A refresh replaces the whole month with what
the latest manifest lists, so a re-delivered month never counts twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from finops_pipeline import focus
from finops_pipeline.config import Account
from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.cur.pull import (
    Manifest,
    Store,
    _join,
    fetch_files,
    open_store,
    parse_manifest,
)
from finops_pipeline.defs.aws.resource_types import resource_type_sql
from finops_pipeline.diagnosis import PENDING, Diagnosis, ProviderError
from finops_pipeline.http_budget import Deadline
from finops_pipeline.lake import partition_metadata
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import lookup_sql
from finops_pipeline.workdir import WorkSession

SOURCE = "focus"
# AWS's FOCUS export leaves ResourceType NULL where it has a ResourceId (FOCUS 1.2: MUST NOT be null then): the type
# is read from the id as for CUR (defs/aws/resource_types.py). The export's x_ServiceCode is not a cost_daily column,
# so the product code that explains bare ids (an S3 bucket name) comes from the ServiceName of those products.
_PRODUCT_CODES = {"Amazon Simple Storage Service": "AmazonS3", "Amazon CloudFront": "AmazonCloudFront", "Amazon Route 53": "AmazonRoute53"}
DERIVED = {"ResourceType": resource_type_sql(
    '"ResourceId"', lookup_sql('"ServiceName"', _PRODUCT_CODES))}


def export_root(account: Account) -> str:
    return _join(account.settings.get("prefix", ""), account.settings["export_name"]) + "/"


def manifest_key(account: Account, billing_period: str) -> str:
    export = account.settings["export_name"]
    return _join(account.settings.get("prefix", ""), export, "metadata", f"BILLING_PERIOD={billing_period}", f"{export}-Manifest.json")


def latest_manifest(store: Store, account: Account, billing_period: str) -> Manifest:
    key = manifest_key(account, billing_period)
    stored = store.stat(key)
    if stored is None:
        from finops_pipeline.defs.aws.focus.source import NO_DATA as advice
        raise ProviderError(Diagnosis(
            "aws.focus_manifest_missing", PENDING,
            f"No FOCUS export manifest for {billing_period} at {store.describe(key)}: no export has been delivered for this "
            "month yet, or prefix/export_name do not match the export.",
            advice.fix + " Check that prefix and export_name in the account settings match the export's S3 path.",
            store.describe(key)))
    return parse_manifest(store.read_bytes(key), key, stored, billing_period, "cur2", store.describe(key),
                          bucket=getattr(store, "bucket", None), root=export_root(account))


def pull_focus(account: Account, billing_period: str, data_dir: Path | None = None) -> Pull:
    deadline = Deadline.for_account(account)
    work = WorkSession(data_dir)
    manifest = None
    store = None
    with work.releasing_on_failure(focus.FocusFileError, lambda exc: _file_error(exc, store, manifest)):
        store = open_store(account, deadline)
        manifest = latest_manifest(store, account, billing_period)
        fetched_files, fetched = fetch_files(store, manifest, work.dir)
        files = [focus.FocusFile(f.key, f.path) for f in fetched_files]
        connection = work.connect(focus.memory_limit())
        groups = focus.group_files(connection, files)
        totals = focus.raw_totals(connection, groups, billing_period)

    ingested_at = datetime.now(timezone.utc)
    details = {
        "manifest": store.describe(manifest.key),
        "manifest_last_modified": manifest.last_modified.isoformat(),
        "execution_id": manifest.assembly_id,
        "files": len(files),
        "bytes_fetched": fetched,
        "rows_read": totals.rows,
        "rows_by_charge_category": dict(sorted(totals.by_category.items())),
        **focus.describe_files(groups),
    }
    produce = focus.producer(
        work, groups, rollup=dict(
            provider_name=PROVIDER.focus_name, invoice_issuer=PROVIDER.invoice_issuer, provider_key=PROVIDER.key,
            source=SOURCE, account_key=account.key, account_name=account.name, billing_period=billing_period,
            source_updated_at=manifest.last_modified, ingested_at=ingested_at, derived=DERIVED),
        metadata=partition_metadata(totals.billed, {"focus_manifest": manifest.key, "focus_execution_id": manifest.assembly_id}),
        on_file_error=lambda exc: _file_error(exc, store, manifest))
    return Pull(source_totals=totals.billed, produce=produce, api_calls=store.calls, metadata=details)


def _file_error(exc: focus.FocusFileError, store: Store | None, manifest: Manifest | None) -> ProviderError:
    where = store.describe(exc.key) if store is not None and "/" in exc.key else exc.key
    context = f"manifest {manifest.key}, execution {manifest.assembly_id}" if manifest is not None else ""
    return focus.file_error(exc, provider="aws", title="AWS FOCUS export", where=where, context=context)

