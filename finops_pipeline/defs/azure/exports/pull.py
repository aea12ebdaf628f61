"""Azure Cost Management exports in Blob Storage -> cost_daily: the month's newest run, exactly its blobs.

Cost Management writes each run of an export under
`<container>/<root path>/<export name>/<YYYYMMDD-YYYYMMDD>/<...>/<runId>/` and, after its data, a
`manifest.json` (`exportConfig`, `deliveryConfig`, `runInfo.runId/submittedTime/startDate/endDate`,
`blobs[].blobName/byteCount/dataRowCount`, `blobCount`, `dataRowCount`). Older runs of the month stay
beside the newest, so reading the folder would count the month several times: per month the newest
run by `runInfo.submittedTime` is read, exactly the blobs its manifest lists, and the month is replaced
whole. A manifest is trusted only inside the export's own month folder: a blob outside it, listed
twice, missing, or of another size than the manifest says is bad input, and nothing is written. A run
with no rows is an empty month only when its manifest says so (`dataRowCount` 0).

Blobs are streamed to a private temporary directory (finops_pipeline.workdir) and read there by the
shared FOCUS reader (finops_pipeline.focus); cost details files are first projected onto FOCUS names
(cost_details.py). Every request shares one deadline (give_up_after_seconds).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from finops_pipeline import focus
from finops_pipeline.config import Account
from finops_pipeline.defs.azure import PROVIDER
from finops_pipeline.defs.azure.exports import cost_details
from finops_pipeline.defs.azure.exports.store import BlobInfo, BlobStore, open_store
from finops_pipeline.diagnosis import ERROR, PENDING, Diagnosis, ProviderError
from finops_pipeline.http_budget import Deadline, secrets_kept_out_of_logs
from finops_pipeline.lake import partition_metadata
from finops_pipeline.money import merge_totals
from finops_pipeline.refresh import Pull
from finops_pipeline.workdir import WorkSession

SOURCE = "exports"
TITLE = "Azure cost export"
DATASET_TYPES = {"focus": ("FocusCost",), "actual": ("ActualCost", "Usage"), "amortized": ("AmortizedCost",)}
_FOLDER = re.compile(r"(\d{8})-(\d{8})")


@dataclass(frozen=True)
class ExportBlob:
    name: str
    byte_count: int | None
    rows: int | None


@dataclass(frozen=True)
class Run:
    export: str
    manifest: str
    run_id: str
    submitted: datetime
    kind: str
    data_version: str | None
    blobs: tuple[ExportBlob, ...]
    rows: int | None  # dataRowCount, when the manifest says


def export_roles(account: Account) -> tuple[tuple[str, str], ...]:
    """(role, export name) of every export the account reads: the FOCUS one, or ActualCost and AmortizedCost."""
    settings = account.settings
    if settings.get("dataset", "focus") == "cost_details":
        return (("actual", settings["export_name"]), ("amortized", settings["amortized_export_name"]))
    return (("focus", settings["export_name"]),)


def export_root(account: Account, export: str) -> str:
    root = account.settings.get("root_path", "")
    return f"{root}/{export}/" if root else f"{export}/"


def _month_folder_ok(folder: str, billing_period: str) -> bool:
    match = _FOLDER.fullmatch(folder)
    return bool(match) and match.group(1)[:6] == billing_period.replace("-", "") and match.group(2)[:6] == match.group(1)[:6]


def _invalid(store: BlobStore, manifest: str, problem: str) -> ProviderError:
    return ProviderError(Diagnosis(
        "azure.export_manifest_invalid", ERROR,
        f"The export manifest {store.describe(manifest)} {problem}. Nothing was read; the month keeps its last good data.",
        "A manifest lists only its own run's blobs, once each, in the export's folder: something other than Cost Management "
        "wrote or edited it. Check who can write to the export's directory, then run the export again (Cost Management -> "
        "Exports -> the export -> Run now).", store.describe(manifest)[:600]))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_manifest(store: BlobStore, blob: BlobInfo, month_prefix: str, export: str) -> Run:
    """A manifest.json -> Run, after proving every blob it lists lies in the export's month folder, once."""
    try:
        document = json.loads(store.read_bytes(blob.name, blob.size))
    except (ValueError, UnicodeDecodeError):
        raise _invalid(store, blob.name, "is not JSON (a run still writing, or a damaged file)") from None
    if not isinstance(document, dict) or not isinstance(document.get("runInfo"), dict) or not isinstance(document.get("blobs"), list):
        raise _invalid(store, blob.name, "lacks runInfo or blobs (not a Cost Management export manifest)")
    run_info, config = document["runInfo"], document.get("exportConfig") if isinstance(document.get("exportConfig"), dict) else {}
    submitted = _time(run_info.get("submittedTime")) or blob.last_modified or datetime.min.replace(tzinfo=timezone.utc)
    blobs, seen = [], set()
    for item in document["blobs"]:
        name = item.get("blobName") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(store, blob.name, "lists a blob without a blobName")
        name = name.lstrip("/")
        parts = name.split("/")
        if "\\" in name or any(p in ("", ".", "..") for p in parts) or not name.startswith(month_prefix):
            raise _invalid(store, blob.name, f"lists the blob {name!r}, which lies outside the export's folder '{month_prefix}'")
        if name in seen:
            raise _invalid(store, blob.name, f"lists the blob {name!r} twice")
        seen.add(name)
        blobs.append(ExportBlob(name, _count(item.get("byteCount")), _count(item.get("dataRowCount"))))
    count = _count(document.get("blobCount"))
    if count is not None and count != len(blobs):
        raise _invalid(store, blob.name, f"says blobCount {count} but lists {len(blobs)} blob(s): the run is partial")
    rows = _count(document.get("dataRowCount"))
    if rows is None and blobs and all(b.rows is not None for b in blobs):
        rows = sum(b.rows for b in blobs)
    return Run(export, blob.name, str(run_info.get("runId") or ""), submitted, str(config.get("type") or ""),
               str(config["dataVersion"]) if config.get("dataVersion") else None, tuple(blobs), rows)


def latest_run(store: BlobStore, account: Account, export: str, billing_period: str, role: str) -> tuple[Run, list[str], dict[str, int]]:
    """The newest run of `export` for the month, notes on newer runs that left no manifest, and the month's blobs (name -> size)."""
    from finops_pipeline.defs.azure.exports.source import NO_DATA

    root = export_root(account, export)
    listed = store.list(root + billing_period.replace("-", ""))
    in_month = [b for b in listed if _month_folder_ok(b.name[len(root):].split("/", 1)[0], billing_period)]
    manifests = [b for b in in_month if b.name.rsplit("/", 1)[-1] == "manifest.json"]
    where = store.describe(root)
    if not manifests:
        if in_month:  # data without a manifest: a run that failed, or one still writing
            newest = max((b.last_modified for b in in_month if b.last_modified), default=None)
            raise ProviderError(Diagnosis(
                "azure.export_run_incomplete", ERROR,
                f"The export '{export}' wrote {len(in_month)} file(s) for {billing_period} under {where} but no manifest.json: its run "
                "failed or is still writing. Nothing was read; the month keeps its last good data.",
                "Cost Management -> Exports -> the export -> Run history: if the run failed, its error says why (often the storage "
                "account's firewall or a deleted container); fix it and Run now. A run still writing finishes within hours.",
                f"{where}, newest file {newest.isoformat() if newest else 'unknown'}"))
        anything = listed or store.list(root, limit=1)
        cause = (f"No run of the export '{export}' has delivered {billing_period} to {where} yet" if anything else
                 f"No run of the export '{export}' has delivered anything to {where} yet")
        raise ProviderError(Diagnosis(
            "azure.export_not_delivered", PENDING,
            f"{cause}: the export has not run yet (its first run comes within 24 hours of its creation), or container, root_path "
            f"or {role} in the account settings do not match the export.",
            NO_DATA.fix + " Check that container, root_path and the export name in the account settings match the export's "
            "storage destination.", where))
    runs = [parse_manifest(store, b, root + b.name[len(root):].split("/", 1)[0] + "/", export) for b in manifests]
    run = max(runs, key=lambda r: (r.submitted, r.manifest))
    allowed = DATASET_TYPES[role]
    if run.kind and run.kind not in allowed:
        raise ProviderError(Diagnosis(
            "azure.export_wrong_dataset", ERROR,
            f"The export '{export}' exports the {run.kind} dataset, but this account reads it as {allowed[0]}. Nothing was read.",
            "Set dataset (focus or cost_details) and export_name / amortized_export_name in the account settings to the exports "
            f"of those datasets, or edit the export (Cost Management -> Exports) to the {allowed[0]} dataset.",
            store.describe(run.manifest)))
    manifest_folders = {m.name.rsplit("/", 1)[0] for m in manifests}
    newer = sorted({b.name.rsplit("/", 1)[0] for b in in_month if b.name.rsplit("/", 1)[0] not in manifest_folders
                    and b.last_modified and b.last_modified > run.submitted})
    notes = [f"{store.describe(folder)} has files but no manifest (a newer run failed or is still writing); read the run "
             f"{run.run_id} instead" for folder in newer]
    return run, notes, {b.name: b.size for b in in_month}


def fetch_run(store: BlobStore, run: Run, workdir: Path, listed: dict[str, int]) -> tuple[list[focus.FocusFile], int]:
    """Every blob the run lists, on local disk, its size checked against the manifest."""
    from finops_pipeline.defs.azure.exports.store import missing_blob

    files, fetched = [], 0
    for index, blob in enumerate(run.blobs):
        if blob.name not in listed:
            raise missing_blob(store.describe(blob.name))
        target = workdir / f"{index:05d}-{blob.name.rsplit('/', 1)[-1]}"
        size = store.fetch(blob.name, target)
        if blob.byte_count is not None and size != blob.byte_count:
            raise ProviderError(Diagnosis(
                "azure.export_blob_size_mismatch", ERROR,
                f"The blob {store.describe(blob.name)} holds {size} bytes, but the run's manifest says {blob.byte_count}: the run "
                "is partial, or the blob was changed after the export wrote it. Nothing was written; the month keeps its last good data.",
                "Run the export again (Cost Management -> Exports -> the export -> Run now) or wait for its next daily run; check "
                "that nothing else writes to the export's directory.", f"manifest {store.describe(run.manifest)}, run {run.run_id}"))
        fetched += size
        files.append(focus.FocusFile(blob.name, target))
    return files, fetched


def _check_rows(store: BlobStore, run: Run, rows: int) -> None:
    if run.rows is not None and run.rows != rows:
        raise ProviderError(Diagnosis(
            "azure.export_run_partial", ERROR,
            f"The export run {run.run_id} says it wrote {run.rows} rows ({store.describe(run.manifest)}), but its blobs hold {rows}: "
            "the run is partial or its files were changed. Nothing was written; the month keeps its last good data.",
            "Run the export again (Cost Management -> Exports -> the export -> Run now) or wait for its next daily run.",
            store.describe(run.manifest)))


def _file_error(exc: focus.FocusFileError, store: BlobStore | None, runs: list[Run]) -> ProviderError:
    where = store.describe(exc.key) if store is not None else exc.key
    context = "; ".join(f"manifest {store.describe(r.manifest) if store else r.manifest}, run {r.run_id}" for r in runs)
    return focus.file_error(exc, provider="azure", title=TITLE, where=where, context=context)


def secrets(account: Account) -> list[str]:
    return [account.env(name) for name in ("client_secret_env", "sas_token_env", "connection_string_env") if account.settings.get(name)]


def pull_exports(account: Account, billing_period: str, data_dir: Path | None = None) -> Pull:
    """Fetch the month's newest run(s) and return a Pull whose `produce` writes the partition with DuckDB."""
    deadline = Deadline.for_account(account)
    settings = account.settings
    cost_details_kind = settings.get("dataset", "focus") == "cost_details"
    roles = export_roles(account)
    work = WorkSession(data_dir, "azexp")
    workdir = work.dir
    store, runs = None, []
    notes: list[str] = []
    with work.releasing_on_failure(focus.FocusFileError, lambda exc: _file_error(exc, store, runs)):
        with secrets_kept_out_of_logs(secrets(account)):
            store = open_store(account, deadline)
            try:
                fetched_by_role: dict[str, list[focus.FocusFile]] = {}
                fetched = 0
                for role, export in roles:
                    run, found, listed = latest_run(store, account, export, billing_period, role)
                    runs.append(run)
                    notes += found
                    if not run.blobs and run.rows != 0:
                        raise ProviderError(Diagnosis(
                            "azure.export_run_partial", ERROR,
                            f"The export run {run.run_id} lists no blobs, and its manifest does not say the month has no rows "
                            f"(dataRowCount {run.rows!r}): the run failed or is partial. The month keeps its last good data.",
                            "Cost Management -> Exports -> the export -> Run history: check the run's status, then Run now.",
                            store.describe(run.manifest)))
                    (workdir / role).mkdir()
                    files, size = fetch_run(store, run, workdir / role, listed)
                    fetched_by_role[role] = files
                    fetched += size
            finally:
                store.close()
        connection = work.connect(focus.memory_limit())
        raw_billed: dict[str, Decimal] | None = None
        effective: dict[str, Decimal] = {}
        if cost_details_kind:
            converted_files = []
            raw_billed = {}
            for role, files in fetched_by_role.items():
                rows = 0
                for index, file in enumerate(files):
                    converted = cost_details.convert(connection, file, role == "amortized", workdir / f"focus-{role}-{index:05d}.parquet")
                    converted_files.append(converted.file)
                    rows += converted.rows
                    merge_totals([converted.totals], effective if role == "amortized" else raw_billed)
                _check_rows(store, runs[[r for r, _ in roles].index(role)], rows)
            groups = focus.group_files(connection, converted_files, "1.2")  # written with FOCUS 1.2 names
        else:
            groups = focus.group_files(connection, fetched_by_role["focus"], runs[0].data_version)
        totals = focus.raw_totals(connection, groups, billing_period)
        if not cost_details_kind:
            _check_rows(store, runs[0], totals.rows)
        if raw_billed is not None and _nonzero(raw_billed) != _nonzero(totals.billed):  # the projection must not move a cent
            raise RuntimeError(f"cost details projection changed BilledCost: raw {raw_billed} != projected {totals.billed}")

    ingested_at = datetime.now(timezone.utc)
    updated_at = max(r.submitted for r in runs)
    details = {
        "dataset": "cost_details" if cost_details_kind else "focus",
        "manifests": [store.describe(r.manifest) for r in runs],
        "run_ids": [r.run_id for r in runs],
        "run_submitted": [r.submitted.isoformat() for r in runs],
        "files": sum(len(r.blobs) for r in runs),
        "bytes_fetched": fetched,
        "rows_read": sum(r.rows or 0 for r in runs) if cost_details_kind else totals.rows,
        "rows_by_charge_category": dict(sorted(totals.by_category.items())),
        **({"effective_cost_totals": {c: str(v) for c, v in sorted(effective.items())}} if cost_details_kind else {}),
        **({"notes": notes} if notes else {}),
        **focus.describe_files(groups),
    }
    source_totals = raw_billed if raw_billed is not None else totals.billed

    produce = focus.producer(
        work, groups, rollup=dict(
            provider_name=PROVIDER.focus_name, invoice_issuer=PROVIDER.invoice_issuer, provider_key=PROVIDER.key,
            source=SOURCE, account_key=account.key, account_name=account.name, billing_period=billing_period,
            source_updated_at=updated_at, ingested_at=ingested_at),
        metadata=partition_metadata(totals.billed, {"azure_export_manifests": json.dumps([r.manifest for r in runs]),
                                                    "azure_export_run_ids": ",".join(r.run_id for r in runs)}),
        on_file_error=lambda exc: _file_error(exc, store, runs))
    return Pull(source_totals=source_totals, produce=produce, api_calls=store.calls, metadata=details)


def _nonzero(totals: dict[str, Decimal]) -> dict[str, Decimal]:
    return {c: v for c, v in totals.items() if v}
