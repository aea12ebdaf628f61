"""Native FOCUS files (AWS Data Exports, Azure FocusCost exports, ...) -> cost_daily, with DuckDB.

A FOCUS export already speaks cost_daily's language, so this reader is mostly a projection: it selects
cost_daily's columns BY NAME from each file (the intersection with `schema.COLUMNS`; NULL for the rest),
so when cost_daily gains a FOCUS column the reader fills it without a change here. What it does:

- **Versions.** FOCUS 1.0, 1.1 and 1.2 files are read (Azure's `1.0r2` is 1.0 with seconds in dates,
  `1.2-preview` is 1.2). 1.0 columns renamed since are mapped to their 1.2 name (AWS `x_UsageType` and Microsoft
  `x_SkuMeterName` -> `SkuMeter`, Microsoft `x_PricingCurrency` -> `PricingCurrency`, `x_InvoiceId` -> `InvoiceId`),
  1.0's `x_CostCategories` moves into `Tags` as `costCategory/<name>` keys. A version the
  reader does not know (declared by the export, or a file shaped like FOCUS 1.3: `ServiceProviderName`
  without `ProviderName`) is refused with a fix.
- **Types.** Costs and quantities (DOUBLE in AWS's Parquet, decimal text in CSV) are cast to
  DECIMAL(38,10) per line before anything is summed: a DOUBLE becomes its nearest 10-decimal value,
  which is its shortest repr whenever that has at most 10 decimals (what exports write). Timestamps
  (Parquet TIMESTAMP in ms, epoch milliseconds, or ISO text with or without seconds) become UTC.
- **Daily rollup.** Hourly, daily or monthly rows -> one row per UTC day (ChargePeriodStart truncated to
  the day, ChargePeriodEnd the next day) and per distinct value of every other selected column. Columns
  whose name ends in `Cost` or `Quantity` are summed; every other column is part of the grain.
- **Tags** become a JSON object of strings with sorted keys (NULL when empty), from a Parquet MAP or
  JSON text.
- **x_ columns**: an export's own `x_...` columns are kept where cost_daily has a column of that name,
  and dropped otherwise (`describe_files` lists what was dropped, for the materialization's metadata).
- **Reconciliation**: `raw_totals` sums BilledCost per currency straight from the files, with the same
  per-line cast, so the partition's totals equal them exactly.
- **Derivations** (`derived`): a source may supply, per column, a SQL expression over the row's cost_daily
  columns that fills the column where its export leaves it NULL (AWS: ResourceType from ResourceId; GCP:
  ResourceType from the resource name, SubAccountType `Project`). A value the export gives is kept.
- **Fills** (`FILLS`, like the derivations): the PricingCurrency* amounts are the billing ones where PricingCurrency
  is the BillingCurrency and the export has no such column (FOCUS 1.0 files).
- **FOCUS 1.2 conformance** (`CONFORMANCE`, applied to every row after the derivations): exports write what
  their providers write, and some of it breaks FOCUS 1.2's column rules; only descriptive columns, unit
  prices and quantities are changed, never a `...Cost` column, so the totals reconcile exactly:
  - Tax rows: SkuId, SkuPriceId, PricingQuantity, PricingCategory, ListUnitPrice, ContractedUnitPrice and
    their PricingCurrency twins NULL (each "MUST be null when ChargeCategory is Tax"; on Credit and
    Adjustment rows the spec lets them be, so they are kept).
  - SkuMeter NULL when SkuId is; SkuPriceDetails NULL when SkuPriceId is; PricingUnit NULL when
    PricingQuantity is.
  - ConsumedQuantity NULL when ChargeCategory is not Usage, or is Usage with CommitmentDiscountStatus
    Unused; ConsumedUnit NULL when ConsumedQuantity is.
  - CommitmentDiscountCategory, -Type, -Name and -Status NULL when CommitmentDiscountId is;
    CommitmentDiscountQuantity NULL unless ChargeCategory is Usage or Purchase with a CommitmentDiscountId;
    CommitmentDiscountUnit NULL when CommitmentDiscountQuantity is.
  - ResourceType NULL when ResourceId is; SubAccountName and SubAccountType NULL when SubAccountId is;
    RegionName NULL when RegionId is.
  - One ServiceCategory per ServiceName across the table (FOCUS: one category per service): the shared
    mapping's (`schema.service_category_sql`, the one every other source uses) wherever it knows the service;
    the export's own category for a service the mapping does not know (unless a month gives it several).
  - ServiceSubcategory under the row's ServiceCategory (FOCUS: one parent per subcategory): the export's where its
    parent is that category, else the shared mapping's (`schema.service_subcategory_sql`) where that is, else
    `Other (<ServiceCategory>)` (FOCUS 1.2's value for a service no other subcategory fits; never null).
  - PricingUnit, ConsumedUnit and CommitmentDiscountUnit in FOCUS UnitFormat where the export's unit is known
    (`schema.focus_unit`: "Hrs" -> "Hours", "GB-Mo" -> "GB-Months", "1 GB/Month" -> "GB-Months"; quantities unchanged).
  docs/focus_conformance.md quotes the spec's rule behind each, and the validator's where it differs.
- **Bad input** raises `FocusFileError` naming the file, the column and the problem; the caller turns it
  into a ProviderError (see `file_error`), and nothing is written, so the month keeps its last good data.

Nothing here knows a provider: the caller passes the provider's FOCUS name and its own account values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from finops_pipeline import workdir
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError
from finops_pipeline.money import sum_by_currency
from finops_pipeline.schema import (
    CHARGE_CATEGORIES,
    COLUMNS,
    UNIT_COLUMNS,
    focus_unit_sql,
    month_bounds,
    service_category_sql,
    service_subcategory_sql,
    sql_literal,
    subcategory_parent_sql,
)
from finops_pipeline.workdir import WorkSession

MONEY_SQL = "DECIMAL(38,10)"

# Declared version -> the FOCUS version whose column names it uses.
VERSIONS = {"1.0": "1.0", "1.0r2": "1.0", "1.0-preview": "1.0", "1.1": "1.1", "1.2": "1.2", "1.2-preview": "1.2"}
# Columns renamed or merged since a version, to their FOCUS 1.2 name.
# 1.0 exports wrote as x_ columns what FOCUS 1.2 later named: AWS x_UsageType; Microsoft (FocusCost 1.0/1.0r2, renamed
# in its 1.2-preview) x_SkuMeterName, x_PricingCurrency and x_InvoiceId.
RENAMES = {"1.0": {"x_UsageType": "SkuMeter", "x_SkuMeterName": "SkuMeter", "x_PricingCurrency": "PricingCurrency", "x_InvoiceId": "InvoiceId"},
           "1.1": {}, "1.2": {}}
TAG_MERGES = {"1.0": {"x_CostCategories": "costCategory/"}, "1.1": {}, "1.2": {}}
# Columns every FOCUS version since 1.0 mandates, without which no cost can be attributed.
REQUIRED = ("BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargeCategory", "BillingAccountId", "ServiceName")
# Columns this reader computes itself, whatever the file holds.
COMPUTED = ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd", "Tags", "x_Provider", "x_Source",
            "x_AccountKey", "x_SourceUpdatedAt", "x_IngestedAt")


class FocusFileError(ValueError):
    """A FOCUS file that cannot be used: `key` names it, `column` the column at fault (if one is)."""

    def __init__(self, key: str, problem: str, fix: str, column: str | None = None, sample: str | None = None):
        self.key, self.problem, self.fix, self.column, self.sample = key, problem, fix, column, sample
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class FocusFile:
    key: str  # where it came from (a bucket key, a blob name): what errors name
    path: Path  # where it is on disk

    @property
    def kind(self) -> str:
        name = self.path.name.lower()
        if name.endswith((".parquet", ".snappy.parquet")):
            return "parquet"
        if name.endswith((".csv", ".csv.gz", ".gz")):
            return "csv"
        raise FocusFileError(self.key, "is neither Parquet nor CSV (.csv, .csv.gz)",
                             "Set the export's file format to Parquet or CSV (none or gzip compression).")


@dataclass
class Layout:
    kind: str
    version: str
    types: dict[str, str]  # raw column -> DuckDB type
    columns: dict[str, str]  # cost_daily name -> raw column
    tag_merges: tuple[tuple[str, str], ...] = ()  # (raw column, key prefix) merged into Tags
    dropped: tuple[str, ...] = ()

    def signature(self) -> tuple:
        return (self.kind, self.version, tuple(sorted(self.types.items())))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(kind: str, paths: list[str]) -> str:
    listed = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    if kind == "parquet":
        return f"read_parquet({listed}, union_by_name = true)"
    return f"read_csv({listed}, header = true, all_varchar = true, union_by_name = true, compression = 'auto')"


def _wrong_file(key: str, problem: str) -> FocusFileError:
    return FocusFileError(key, problem, "The file was damaged in delivery or in a sync: re-sync it, or wait for the export's next run. "
                          "The month keeps its last good data.")


def read_types(connection: duckdb.DuckDBPyConnection, file: FocusFile) -> dict[str, str]:
    try:
        rows = connection.execute(f"DESCRIBE SELECT * FROM {_source(file.kind, [str(file.path)])}").fetchall()
    except duckdb.Error as exc:
        message = str(exc).replace(str(file.path), file.key).splitlines()[0]
        raise _wrong_file(file.key, f"is corrupt, truncated or not {file.kind.upper()} ({message})") from None
    return {str(name): str(kind) for name, kind, *_ in rows}


def detect_version(key: str, columns: Iterable[str], declared: str | None = None) -> str:
    """The FOCUS version whose names `columns` use: the declared one if given, else told by its columns."""
    names = set(columns)
    if declared is not None:
        version = VERSIONS.get(str(declared).strip().lower())
        if version is None:
            raise FocusFileError(key, f"declares FOCUS version {declared!r}, which this pipeline does not read "
                                 f"(it reads {', '.join(sorted(VERSIONS))})",
                                 "Edit the export to a supported FOCUS version (1.2 where offered, else 1.0), or upgrade finops_pipeline.")
        return version
    if "ServiceProviderName" in names and "ProviderName" not in names:
        raise FocusFileError(key, "has the columns of a FOCUS version newer than 1.2 (ServiceProviderName without ProviderName)",
                             "Edit the export to FOCUS 1.2 (or 1.0), or upgrade finops_pipeline to a release that reads this version.")
    if not {"BilledCost", "ChargeCategory"} <= names:
        raise FocusFileError(key, "is not a FOCUS file of a known version (no BilledCost and ChargeCategory columns)",
                             "Point the account at a FOCUS export (AWS: 'FOCUS 1.2 with AWS columns'; Azure: the FocusCost "
                             "dataset), not a CUR or cost details export.", column="BilledCost")
    if "SkuMeter" not in names and ({"x_UsageType", "x_CostCategories"} & names or "ServiceSubcategory" not in names):
        return "1.0"
    if "ServiceSubcategory" in names and not ({"InvoiceId", "PricingCurrency"} & names):
        return "1.1"
    return "1.2"


_NUMERIC = ("DOUBLE", "FLOAT", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "REAL")
_TEXT = ("VARCHAR",)


def _is(kind: str, families: tuple[str, ...]) -> bool:
    return kind.upper().startswith(families)


def _target_kind(column) -> str:
    import pyarrow as pa

    if pa.types.is_decimal(column.type):
        return "decimal"
    if pa.types.is_timestamp(column.type):
        return "timestamp"
    if pa.types.is_boolean(column.type):
        return "boolean"
    return "text"


def layout_of(connection: duckdb.DuckDBPyConnection, file: FocusFile, declared_version: str | None = None) -> Layout:
    return layout_from_types(file.key, file.kind, read_types(connection, file), declared_version)


def is_tag_list(kind: str) -> bool:
    """A list of key/value structs (how BigQuery, and Parquet written from it, hold FOCUS Tags)."""
    text = kind.upper().replace('"', "")
    return text.startswith("STRUCT(") and text.endswith(")[]") and "KEY " in text and "VALUE " in text


def layout_from_types(key: str, kind: str, types: dict[str, str], declared_version: str | None = None) -> Layout:
    """The mapping onto cost_daily of a FOCUS dataset whose columns have these DuckDB `types` (a file's, or a
    table's elsewhere, e.g. in a warehouse): version, renames, mandatory columns and type fit, named by `key`."""
    version = detect_version(key, types, declared_version)
    renames = RENAMES[version]
    merges = TAG_MERGES[version]
    wanted = {c.name: c for c in COLUMNS}
    columns: dict[str, str] = {}
    dropped = []
    for raw in types:
        name = renames.get(raw, raw)
        if raw in merges:
            continue
        if name in wanted:
            if name not in columns or raw == name:  # a file holding both the old and the new name: the new one wins
                columns[name] = raw
        elif raw.startswith("x_"):
            dropped.append(raw)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise FocusFileError(key, f"lacks the mandatory FOCUS column(s) {', '.join(missing)}",
                             "Edit the export to include every FOCUS column (AWS: the 'FOCUS ... with AWS columns' table with all "
                             "columns selected; Azure: the FocusCost dataset), then wait for its next run; the month keeps its last "
                             "good data.", column=missing[0])
    for name, raw in columns.items():
        kind_of, target = types[raw], _target_kind(wanted[name])
        ok = (target == "decimal" and (_is(kind_of, _NUMERIC) or _is(kind_of, _TEXT))) or \
             (target == "timestamp" and (kind_of.upper().startswith(("TIMESTAMP", "DATE")) or _is(kind_of, _TEXT) or _is(kind_of, ("BIGINT",)))) or \
             (target == "boolean" and (kind_of.upper() == "BOOLEAN" or _is(kind_of, _TEXT))) or \
             target == "text"  # a MAP/STRUCT/LIST column (e.g. SkuPriceDetails, x_ maps) is kept as its JSON text
        if name == "Tags":
            ok = kind_of.upper().startswith("MAP") or _is(kind_of, _TEXT) or is_tag_list(kind_of)
        if not ok:
            raise FocusFileError(key, f"holds column {raw} as {kind_of}, which is not a FOCUS {target} column",
                                 "The file was transformed after the export wrote it (a sync or a script changed its types): restore "
                                 "the export's original file, or wait for its next run; the month keeps its last good data.", column=raw)
    tag_merges = tuple((raw, prefix) for raw, prefix in merges.items() if raw in types)
    return Layout(kind, version, types, columns, tag_merges, tuple(sorted(dropped)))


def group_files(connection: duckdb.DuckDBPyConnection, files: Iterable[FocusFile],
                declared_version: str | None = None) -> list[tuple[Layout, list[FocusFile]]]:
    groups: dict[tuple, tuple[Layout, list[FocusFile]]] = {}
    for file in files:
        layout = layout_of(connection, file, declared_version)
        groups.setdefault(layout.signature(), (layout, []))[1].append(file)
    return list(groups.values())


# --- per-line expressions -------------------------------------------------------------------------------

def _money(layout: Layout, raw: str) -> str:
    if _is(layout.types[raw], _TEXT):
        return f"CAST(NULLIF(trim({_q(raw)}), '') AS {MONEY_SQL})"
    return f"CAST({_q(raw)} AS {MONEY_SQL})"


def _timestamp(layout: Layout, raw: str) -> str:
    kind = layout.types[raw].upper()
    if _is(kind, _TEXT):
        return f"CAST(NULLIF(trim({_q(raw)}), '') AS TIMESTAMPTZ)"
    if kind.startswith("BIGINT"):
        return f"CAST(epoch_ms({_q(raw)}) AS TIMESTAMPTZ)"  # epoch milliseconds, UTC
    return f"CAST({_q(raw)} AS TIMESTAMPTZ)"  # a naive TIMESTAMP is UTC (the session's time zone)


def _text(layout: Layout, raw: str) -> str:
    kind = layout.types[raw].upper()
    if kind.startswith(("STRUCT", "MAP", "LIST")) or kind.endswith("[]"):
        return f"NULLIF(NULLIF(CAST(to_json({_q(raw)}) AS VARCHAR), '{{}}'), '[]')"
    return f"NULLIF(CAST({_q(raw)} AS VARCHAR), '')"


def _as_map(layout: Layout, raw: str) -> str:
    if is_tag_list(layout.types[raw]):
        return f"map_from_entries(list_transform({_q(raw)}, lambda e: {{'key': e.key, 'value': e.value}}))"
    if _is(layout.types[raw], _TEXT):
        return f"TRY_CAST(json(NULLIF(trim({_q(raw)}), '')) AS MAP(VARCHAR, VARCHAR))"
    return f"CAST({_q(raw)} AS MAP(VARCHAR, VARCHAR))"


def _tags_map(layout: Layout) -> str:
    """The line's tags as a MAP(VARCHAR, VARCHAR) (cost categories merged in): cheap to group by, per line."""
    raw = layout.columns.get("Tags")
    parts = [_as_map(layout, raw)] if raw else []
    for merged, prefix in layout.tag_merges:
        parts.append(f"map_from_entries(list_transform(map_entries({_as_map(layout, merged)}), "
                     f"lambda e: {{'key': {sql_literal(prefix)} || e.key, 'value': e.value}}))")
    if not parts:
        return "CAST(NULL AS MAP(VARCHAR, VARCHAR))"
    return parts[0] if len(parts) == 1 else "map_concat(" + ", ".join(f"coalesce({p}, MAP {{}})" for p in parts) + ")"


def _tags_json(expression: str) -> str:
    """FOCUS Tags from a map: a JSON object, keys sorted, NULL values as "", NULL when empty (as schema.tags_json).

    Applied after the first rollup, so once per distinct tag set, not once per line."""
    clean = f"list_sort(list_filter(map_entries({expression}), lambda e: e.key IS NOT NULL AND e.key <> ''))"
    fixed = f"list_transform({clean}, lambda e: {{'key': e.key, 'value': coalesce(e.value, '')}})"
    return f"CASE WHEN len(coalesce({clean}, [])) = 0 THEN NULL ELSE CAST(to_json(map_from_entries({fixed})) AS VARCHAR) END"


def _is_measure(column) -> bool:
    return _target_kind(column) == "decimal" and column.name.endswith(("Cost", "Quantity"))


def line_select(layout: Layout, paths: list[str]) -> str:
    """One file group's lines projected onto cost_daily's names (per-line values, before the rollup)."""
    parts = []
    for column in COLUMNS:
        name = column.name
        if name in ("ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd", "x_Provider", "x_Source", "x_AccountKey",
                    "x_SourceUpdatedAt", "x_IngestedAt"):
            continue  # constants or derived in the rollup
        raw = layout.columns.get(name)
        kind = _target_kind(column)
        if name == "ChargePeriodStart":
            expression = f"CAST({_timestamp(layout, raw)} AS DATE)"
            name = "day"
        elif name == "Tags":
            expression = _tags_map(layout)
        elif raw is None:
            expression = {"decimal": f"CAST(NULL AS {MONEY_SQL})", "timestamp": "CAST(NULL AS TIMESTAMPTZ)",
                          "boolean": "CAST(NULL AS BOOLEAN)"}.get(kind, "CAST(NULL AS VARCHAR)")
        elif kind == "decimal":
            expression = _money(layout, raw)
        elif kind == "timestamp":
            expression = _timestamp(layout, raw)
        elif kind == "boolean":
            expression = f"CAST({_q(raw)} AS BOOLEAN)"
        else:
            expression = _text(layout, raw)
        parts.append(f"{expression} AS {_q(name)}")
    return f"SELECT {', '.join(parts)} FROM {_source(layout.kind, paths)}"


def rollup_sql(groups: list[tuple[Layout, list[FocusFile]]], *, provider_name: str, invoice_issuer: str, provider_key: str,
               source: str, account_key: str, account_name: str, billing_period: str, source_updated_at: datetime | None,
               ingested_at: datetime, derived: Mapping[str, str] | None = None) -> str:
    """Every group's lines -> one row per UTC day and grain, in exactly cost_daily's columns, order and types.

    `derived`: column -> SQL expression over the row's cost_daily columns (by quoted name), filling the column
    where the export left it NULL; then `conformance_sql` applies FOCUS 1.2's column rules."""
    period_start, period_end = month_bounds(billing_period)

    def ts(value: datetime | None) -> str:
        return "CAST(NULL AS TIMESTAMPTZ)" if value is None else f"CAST({sql_literal(value.isoformat())} AS TIMESTAMPTZ)"

    if groups:
        lines = " UNION ALL BY NAME ".join(f"({line_select(layout, [str(f.path) for f in files])})" for layout, files in groups)
    else:
        lines = _no_lines()
    day = "CAST(day AS TIMESTAMPTZ)"
    inner, again, outputs = [], [], []
    for column in COLUMNS:
        name = column.name
        quoted = _q(name)
        if name in ("ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd", "x_Provider", "x_Source", "x_AccountKey",
                    "x_SourceUpdatedAt", "x_IngestedAt"):
            pass
        elif name == "ChargePeriodStart":
            inner.append('"day"')
            again.append('"day"')
        elif _is_measure(column):
            inner.append(f"sum({quoted}) AS {quoted}")
            again.append(f"sum({quoted}) AS {quoted}")
        elif name == "x_Estimated":
            inner.append(f"coalesce(bool_or({quoted}), false) AS {quoted}")
            again.append(f"bool_or({quoted}) AS {quoted}")
        elif name == "Tags":
            inner.append(quoted)
            again.append(f"{_tags_json(quoted)} AS {quoted}")
        else:
            inner.append(quoted)
            again.append(quoted)
        expression = {
            "ChargePeriodStart": day,
            "ChargePeriodEnd": f"{day} + INTERVAL 1 DAY",
            "BillingPeriodStart": ts(period_start),
            "BillingPeriodEnd": ts(period_end),
            "ProviderName": f"coalesce({quoted}, {sql_literal(provider_name)})",
            "PublisherName": f"coalesce({quoted}, {sql_literal(provider_name)})",
            # FOCUS 1.3's names, from the 1.2 provider when an export predates them (schema.focus_rules' rule)
            "ServiceProviderName": f"coalesce({quoted}, rolled.\"ProviderName\", {sql_literal(provider_name)})",
            "HostProviderName": f"coalesce({quoted}, rolled.\"ProviderName\", {sql_literal(provider_name)})",
            "InvoiceIssuerName": f"coalesce({quoted}, {sql_literal(invoice_issuer)})",
            "BillingAccountName": f"coalesce({quoted}, {sql_literal(account_name)})",
            "x_Provider": sql_literal(provider_key),
            "x_Source": sql_literal(source),
            "x_AccountKey": sql_literal(account_key),
            "x_SourceUpdatedAt": ts(source_updated_at),
            "x_IngestedAt": ts(ingested_at),
        }.get(name, quoted)
        if name == "ServiceCategory":
            continue_expression = "coalesce(rolled.\"ServiceCategory\", categories.category, 'Other')"
            outputs.append(f"CAST({continue_expression} AS VARCHAR) AS {quoted}")
            continue
        outputs.append(f"CAST({expression} AS {_sql_type(column)}) AS {quoted}")
    # Rolled up on the files' own values first (tags as maps), then once more after the tags become JSON (two maps
    # can differ only in order); the constants and the ServiceCategory mapping are applied once per output row (the
    # mapping once per distinct service), not once per line.
    select = f"""
    WITH raw AS (SELECT {', '.join(inner)} FROM ({lines}) GROUP BY ALL),
    rolled AS MATERIALIZED (SELECT {', '.join(again)} FROM raw GROUP BY ALL),
    categories AS (SELECT name, {service_category_sql("name")} AS category FROM (SELECT DISTINCT "ServiceName" AS name FROM rolled))
    SELECT {', '.join(outputs)} FROM rolled LEFT JOIN categories ON rolled."ServiceName" = categories.name"""
    return conformance_sql(select, derived)


# --- FOCUS 1.2 conformance ---------------------------------------------------------------------------------

_TAX = "\"ChargeCategory\" = 'Tax'"
_NOT_CONSUMED = "(\"ChargeCategory\" IS DISTINCT FROM 'Usage' OR \"CommitmentDiscountStatus\" = 'Unused')"
_NO_COMMITMENT_QUANTITY = "(\"ChargeCategory\" NOT IN ('Usage', 'Purchase') OR \"CommitmentDiscountId\" IS NULL)"

# column -> an expression that fills it where the export leaves it NULL (before the rules below): where the price list's
# currency is the billing currency, the PricingCurrency amounts are the billing ones, exactly (FOCUS 1.0 exports, e.g.
# Microsoft's FocusCost 1.0, name PricingCurrency but have no PricingCurrency* columns yet).
_SAME_CURRENCY = '"PricingCurrency" = "BillingCurrency"'
FILLS: dict[str, str] = {
    "PricingCurrencyEffectiveCost": f'CASE WHEN {_SAME_CURRENCY} THEN "EffectiveCost" END',
    "PricingCurrencyListUnitPrice": f'CASE WHEN {_SAME_CURRENCY} THEN "ListUnitPrice" END',
    "PricingCurrencyContractedUnitPrice": f'CASE WHEN {_SAME_CURRENCY} THEN "ContractedUnitPrice" END',
}

# column -> the condition under which FOCUS 1.2 says it MUST be null (the spec's wording; the validator's rule id).
CONFORMANCE: dict[str, str] = {
    "SkuId": _TAX,  # SkuId-C-004-C
    "SkuPriceId": _TAX,  # SkuPriceId-C-004-C
    "SkuMeter": f'({_TAX} OR "SkuId" IS NULL)',  # SkuMeter-C-004-C
    "SkuPriceDetails": f'({_TAX} OR "SkuPriceId" IS NULL)',  # SkuPriceDetails-C-004-C
    "PricingQuantity": _TAX,  # PricingQuantity-C-004-C
    "PricingUnit": f'({_TAX} OR "PricingQuantity" IS NULL)',  # PricingUnit-C-005-C
    "PricingCategory": _TAX,  # PricingCategory-C-003-C
    "ListUnitPrice": _TAX,  # ListUnitPrice-C-004-C
    "ContractedUnitPrice": _TAX,  # ContractedUnitPrice-C-005-C
    "PricingCurrencyListUnitPrice": _TAX,  # PricingCurrencyListUnitPrice-C-004-C
    "PricingCurrencyContractedUnitPrice": _TAX,  # PricingCurrencyContractedUnitPrice-C-004-C
    "ConsumedQuantity": _NOT_CONSUMED,  # ConsumedQuantity-C-004-C
    "ConsumedUnit": f'({_NOT_CONSUMED} OR "ConsumedQuantity" IS NULL)',  # ConsumedUnit-C-005-C
    "CommitmentDiscountCategory": '"CommitmentDiscountId" IS NULL',  # CommitmentDiscountCategory-C-003-C
    "CommitmentDiscountType": '"CommitmentDiscountId" IS NULL',  # CommitmentDiscountType-C-004-C
    "CommitmentDiscountName": '"CommitmentDiscountId" IS NULL',  # CommitmentDiscountName-C-004-C
    "CommitmentDiscountStatus": '"CommitmentDiscountId" IS NULL',  # CommitmentDiscountStatus-C-003-C (spec wording)
    # CommitmentDiscountQuantity-C-007-C; the spec lets a Correction keep it (-C-006-C), the validator's encoding does not
    "CommitmentDiscountQuantity": _NO_COMMITMENT_QUANTITY,
    "CommitmentDiscountUnit": f'({_NO_COMMITMENT_QUANTITY} OR "CommitmentDiscountQuantity" IS NULL)',  # -C-005-C
    "ResourceType": '"ResourceId" IS NULL',  # ResourceType-C-004-C
    "SubAccountName": '"SubAccountId" IS NULL',  # SubAccountName-C-004-C
    "SubAccountType": '"SubAccountId" IS NULL',  # SubAccountType-C-004-C
    "RegionName": '"RegionId" IS NULL',  # RegionName-C-004-C
}
assert not [name for name in CONFORMANCE if name.endswith("Cost")], "conformance never changes a cost"


def conformance_sql(select: str, derived: Mapping[str, str] | None = None) -> str:
    """`select` (rows in cost_daily's columns) with a source's derivations and `FILLS`, then FOCUS 1.2's column rules
    (`CONFORMANCE`, one ServiceCategory per ServiceName, a ServiceSubcategory of that category, units in UnitFormat).
    Same columns, order and types; BilledCost, EffectiveCost, ListCost and ContractedCost are untouched."""
    types = {c.name: _sql_type(c) for c in COLUMNS}
    unknown = sorted(set(derived or {}) - set(types))
    if unknown:
        raise ValueError(f"derivations for columns cost_daily does not have: {', '.join(unknown)}")
    fills = [f"CAST(coalesce({_q(name)}, {expression}) AS {types[name]}) AS {_q(name)}"
             for name, expression in {**FILLS, **(derived or {})}.items()]
    nulls = [f"CAST(CASE WHEN {condition} THEN NULL ELSE {_q(name)} END AS {types[name]}) AS {_q(name)}"
             for name, condition in CONFORMANCE.items() if name not in UNIT_COLUMNS]
    # the units in FOCUS UnitFormat (schema.focus_unit), after their null rules
    units = [f"CAST({focus_unit_sql(f'CASE WHEN {CONFORMANCE[name]} THEN NULL ELSE {_q(name)} END')} AS VARCHAR) AS {_q(name)}"
             for name in UNIT_COLUMNS]
    several = 'min("ServiceCategory") OVER (PARTITION BY "ServiceName") <> max("ServiceCategory") OVER (PARTITION BY "ServiceName")'
    category = ('CAST(CASE WHEN mapped.category <> \'Other\' OR ' + several + ' THEN mapped.category ELSE "ServiceCategory" END '
                'AS VARCHAR) AS "ServiceCategory"')
    # FOCUS: a subcategory has one parent category. The export's where it is the category's, else the shared mapping's
    # where that is, else "Other (<ServiceCategory>)" (also where the export gives none: the column MUST NOT be null).
    exported_parent = subcategory_parent_sql('"ServiceSubcategory"')
    subcategory = (f'CAST(CASE WHEN {exported_parent} = "ServiceCategory" '
                   f'THEN "ServiceSubcategory" WHEN {subcategory_parent_sql("__mapped_subcategory")} = "ServiceCategory" '
                   'THEN __mapped_subcategory ELSE \'Other (\' || "ServiceCategory" || \')\' END AS VARCHAR) AS "ServiceSubcategory"')
    derived_rows = f"SELECT * REPLACE ({', '.join(fills)}) FROM exported"
    return f"""
    WITH exported AS ({select}),
    derived AS ({derived_rows}),
    mapped AS (SELECT name, {service_category_sql("name")} AS category, {service_subcategory_sql("name")} AS subcategory
               FROM (SELECT DISTINCT "ServiceName" AS name FROM derived)),
    categorized AS (SELECT derived.* REPLACE ({category}), mapped.subcategory AS __mapped_subcategory
                    FROM derived LEFT JOIN mapped ON derived."ServiceName" = mapped.name),
    conformed AS (SELECT * EXCLUDE (__mapped_subcategory) REPLACE ({', '.join(nulls + units)}, {subcategory}) FROM categorized)
    SELECT * FROM conformed"""


def _no_lines() -> str:
    """What `line_select` projects, typed, without a row: a delivery that lists no files is an empty month."""
    parts = []
    for column in COLUMNS:
        if column.name in ("ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd", "x_Provider", "x_Source", "x_AccountKey",
                           "x_SourceUpdatedAt", "x_IngestedAt"):
            continue
        if column.name == "ChargePeriodStart":
            parts.append('CAST(NULL AS DATE) AS "day"')
        else:
            kind = "MAP(VARCHAR, VARCHAR)" if column.name == "Tags" else (MONEY_SQL if _target_kind(column) == "decimal" else _sql_type(column))
            parts.append(f"CAST(NULL AS {kind}) AS {_q(column.name)}")
    return f"SELECT {', '.join(parts)} WHERE false"


def _sql_type(column) -> str:
    kind = _target_kind(column)
    if kind == "decimal":
        return f"DECIMAL({column.type.precision},{column.type.scale})"
    return {"timestamp": "TIMESTAMPTZ", "boolean": "BOOLEAN"}.get(kind, "VARCHAR")


# --- raw totals and value checks ------------------------------------------------------------------------

@dataclass
class RawTotals:
    billed: dict[str, Decimal] = field(default_factory=dict)
    rows: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


def _checks(layout: Layout, billing_period: str) -> list[tuple[str, str, str, str]]:
    """(column, problem, SQL of a bad line, SQL sample) for one layout."""
    checks = []
    for column in COLUMNS:
        raw = layout.columns.get(column.name)
        if raw is None or column.name == "Tags":
            continue
        kind = _target_kind(column)
        sample = f"CAST({_q(raw)} AS VARCHAR)"
        if kind == "decimal":
            if _is(layout.types[raw], _TEXT):
                text = f"NULLIF(trim({_q(raw)}), '')"
                bad = f"({text} IS NOT NULL AND TRY_CAST({text} AS {MONEY_SQL}) IS NULL)"
            elif layout.types[raw].upper() in ("DOUBLE", "FLOAT", "REAL"):
                bad = f"({_q(raw)} IS NOT NULL AND (isnan({_q(raw)}) OR isinf({_q(raw)}) OR abs({_q(raw)}) >= 1e27))"
            else:
                bad = f"({_q(raw)} IS NOT NULL AND TRY_CAST({_q(raw)} AS {MONEY_SQL}) IS NULL)"
            checks.append((raw, f"holds a value in {raw} that is not an amount DECIMAL(38,10) holds", bad, sample))
        elif kind == "timestamp" and _is(layout.types[raw], _TEXT):
            text = f"NULLIF(trim({_q(raw)}), '')"
            checks.append((raw, f"holds a value in {raw} that is not a date and time",
                           f"({text} IS NOT NULL AND TRY_CAST({text} AS TIMESTAMPTZ) IS NULL)", sample))
    start = layout.columns["ChargePeriodStart"]
    kind = layout.types[start]
    day = (f"CAST(TRY_CAST(NULLIF(trim({_q(start)}), '') AS TIMESTAMPTZ) AS DATE)" if _is(kind, _TEXT)
           else f"CAST({_timestamp(layout, start)} AS DATE)")
    _, end = month_bounds(billing_period)
    checks.append((start, f"has rows whose {start} is missing", f"{_q(start)} IS NULL", "'NULL'"))
    # A billing period in the provider's time zone (Google's invoice months run in US Pacific time) ends up to a
    # day after the UTC month end, so the UTC charge day may be the first day after it, never later.
    checks.append((start, f"has rows whose {start} is after the end of billing period {billing_period}",
                   f"{day} > DATE '{end.date().isoformat()}'", f"CAST({_q(start)} AS VARCHAR)"))
    category = layout.columns["ChargeCategory"]
    allowed = "(" + ", ".join(sql_literal(c) for c in CHARGE_CATEGORIES) + ")"
    checks.append((category, f"has a {category} that is not one of {', '.join(CHARGE_CATEGORIES)}",
                   f"coalesce(CAST({_q(category)} AS VARCHAR), '') NOT IN {allowed}", f"CAST({_q(category)} AS VARCHAR)"))
    currency = layout.columns["BillingCurrency"]
    checks.append((currency, f"has rows without {currency}", f"coalesce(CAST({_q(currency)} AS VARCHAR), '') = ''", "'(empty)'"))
    return checks


def _totals_select(layout: Layout, paths: list[str], billing_period: str) -> str:
    billed = layout.columns["BilledCost"]
    amount = (f"TRY_CAST(NULLIF(trim({_q(billed)}), '') AS {MONEY_SQL})" if _is(layout.types[billed], _TEXT)
              else f"TRY_CAST({_q(billed)} AS {MONEY_SQL})")
    checks = "".join(f", count(*) FILTER (WHERE {bad}) AS check_{i}, min({sample}) FILTER (WHERE {bad}) AS sample_{i}"
                     for i, (_, _, bad, sample) in enumerate(_checks(layout, billing_period)))
    return (f"SELECT CAST({_q(layout.columns['BillingCurrency'])} AS VARCHAR) AS currency, "
            f"CAST({_q(layout.columns['ChargeCategory'])} AS VARCHAR) AS category, count(*) AS n, sum({amount}) AS billed{checks} "
            f"FROM {_source(layout.kind, paths)} GROUP BY ALL")


_BAD_VALUE_FIX = ("The export writes only FOCUS values here: the file was changed after delivery (a sync, a script, a transformation). "
                  "Restore the export's original file, or wait for its next run; the month keeps its last good data.")


def raw_totals(connection: duckdb.DuckDBPyConnection, groups: list[tuple[Layout, list[FocusFile]]], billing_period: str) -> RawTotals:
    """BilledCost per currency straight from the files (the reconciliation figure), after every value check."""
    totals = RawTotals()
    for layout, files in groups:
        checks = _checks(layout, billing_period)
        rows = _run(connection, _totals_select(layout, [str(f.path) for f in files], billing_period), layout, files)
        for i, (column, problem, _, _) in enumerate(checks):
            if not any(row[4 + 2 * i] for row in rows):
                continue
            for file in files:  # name the file
                found = rows if len(files) == 1 else _run(connection, _totals_select(layout, [str(file.path)], billing_period), layout, [file])
                samples = [row[5 + 2 * i] for row in found if row[4 + 2 * i]]
                if samples:
                    count = sum(row[4 + 2 * i] for row in found)
                    raise FocusFileError(file.key, f"{problem}: {count} row(s), e.g. {min(samples)!r}", _BAD_VALUE_FIX,
                                         column=column, sample=str(min(samples)))
        for currency, category, count, billed, *_ in rows:
            totals.rows += count
            totals.by_category[category or "(empty)"] = totals.by_category.get(category or "(empty)", 0) + count
            sum_by_currency([(currency, billed)], totals.billed)
    return totals


def _run(connection: duckdb.DuckDBPyConnection, sql: str, layout: Layout, files: list[FocusFile]) -> list[tuple]:
    try:
        return connection.execute(sql).fetchall()
    except duckdb.Error:
        culprit = locate_bad_file(connection, [(layout, files)])
        if culprit is not None:
            raise culprit from None
        raise


def locate_bad_file(connection: duckdb.DuckDBPyConnection, groups: list[tuple[Layout, list[FocusFile]]]) -> FocusFileError | None:
    """After a query failed: read each file alone to name the one that is corrupt, truncated or holds a bad value."""
    for layout, files in groups:
        for file in files:
            try:
                connection.execute(f"SELECT count(*), sum(BilledCost), min(day) FROM ({line_select(layout, [str(file.path)])})").fetchall()
            except duckdb.Error as exc:
                message = str(exc).replace(str(file.path), file.key).splitlines()[0]
                return _wrong_file(file.key, f"is corrupt, truncated or holds a value of the wrong type ({message})")
    return None


def describe_files(groups: list[tuple[Layout, list[FocusFile]]]) -> dict[str, Any]:
    """For the materialization's metadata: versions, formats, cost_daily columns the files lack, x_ columns dropped."""
    present: set[str] = set()
    dropped: set[str] = set()
    for layout, _ in groups:
        present |= set(layout.columns)
        dropped |= set(layout.dropped)
    absent = sorted(c.name for c in COLUMNS if c.name not in present and c.name not in COMPUTED
                    and c.name not in ("ProviderName", "PublisherName", "InvoiceIssuerName", "BillingAccountName", "ServiceCategory", "x_Estimated"))
    return {"focus_versions": sorted({layout.version for layout, _ in groups}), "formats": sorted({layout.kind for layout, _ in groups}),
            "columns_absent": absent if groups else [], "x_columns_dropped": sorted(dropped)}


def memory_limit() -> str:
    """The native-export readers' DuckDB memory limit: FINOPS_FOCUS_MEMORY_LIMIT, else 1400MB; past it DuckDB spills
    to the pull's work directory."""
    return os.environ.get("FINOPS_FOCUS_MEMORY_LIMIT") or "1400MB"


def copy_to_parquet(connection: duckdb.DuckDBPyConnection, select: str, target: Path, metadata: Mapping[str, str],
                    groups: list[tuple[Layout, list[FocusFile]]]) -> None:
    """`workdir.copy_to_parquet`; a failing query names the export file it could not read."""
    try:
        workdir.copy_to_parquet(connection, select, target, metadata)
    except duckdb.Error:
        culprit = locate_bad_file(connection, groups)
        if culprit is not None:
            raise culprit from None
        raise


def file_error(exc: FocusFileError, *, provider: str, title: str, where: str, context: str = "", kind: str = "file") -> ProviderError:
    """A FocusFileError as the ProviderError the status table shows: the file (or table: `kind`), the problem, the fix."""
    code = "focus_bad_value" if exc.sample is not None else ("focus_column_missing" if exc.column else "focus_file_unreadable")
    if "version" in exc.problem:
        code = "focus_version_unsupported"
    detail = f"{kind} {where}" + (f", column {exc.column}" if exc.column else "") + (f", sample {exc.sample!r}" if exc.sample else "")
    return ProviderError(Diagnosis(
        f"{provider}.{code}", ERROR, f"The {title} {kind} {where} {exc.problem}. Nothing was written; the month keeps its last good data.",
        exc.fix, (detail + (f"; {context}" if context else ""))[:600]))


def producer(work: WorkSession, groups: list[tuple[Layout, list[FocusFile]]], *, rollup: Mapping[str, Any],
             metadata: Mapping[str, str], on_file_error: Callable[[FocusFileError], BaseException]) -> Callable[[Path], None]:
    """A Pull's `produce` for a native export: the daily rollup written to `target` over the session's
    connection, a bad file raised as its source's error, the session released whatever happens."""
    def produce(target: Path) -> None:
        try:
            try:
                copy_to_parquet(work.connection, rollup_sql(groups, **rollup), target, metadata, groups)
            except FocusFileError as exc:
                raise on_file_error(exc) from None
        finally:
            work.close()

    return produce
