"""CUR delivery files -> cost_daily, as DuckDB queries that stream over the files.

DuckDB reads the Parquet / CSV files itself, groups hourly line items to days and COPYs the result
straight into the partition file, so a month of any size passes through with bounded memory (a
memory_limit plus a spill directory) and no Python loop over rows. Money is cast to DECIMAL(38,10)
per line before anything is summed: CSV amounts are decimal strings, Parquet amounts are DOUBLE
with at most 10 decimals, which the cast recovers exactly.

All four formats are first projected to one canonical set of CUR 2.0 snake_case names: legacy CSV
headers (`lineItem/UnblendedCost`) become snake_case the way AWS's own Parquet conversion does it,
so the rules below are written once.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.regions import region_name_sql
from finops_pipeline.defs.aws.resource_types import resource_type_sql
from finops_pipeline.defs.aws.services import service_name_sql
from finops_pipeline.money import sum_by_currency
from finops_pipeline.schema import COLUMNS, focus_unit_sql, month_bounds, service_category_sql, service_subcategory_sql, sql_literal

MONEY_SQL = "DECIMAL(38,10)"
# Amounts the Parquet footer proves smaller than 10^8 are cast to a 64-bit decimal instead (the same
# exact value, see `parquet_facts`); their sums are DECIMAL(38,10) all the same.
NARROW_MONEY_SQL = "DECIMAL(18,10)"
NARROW_BOUND = 99_999_999  # |amount| below this fits DECIMAL(18,10) with room for the rounding of the last digit

# Columns a delivery file must have; without them no cost can be attributed, so the month fails.
REQUIRED = (
    "line_item_usage_start_date",
    "line_item_line_item_type",
    "line_item_unblended_cost",
    "line_item_currency_code",
    "line_item_usage_account_id",
    "line_item_product_code",
)
# Optional columns by kind; absent ones become NULL.
OPTIONAL_TEXT = (
    "bill_payer_account_id",
    "bill_payer_account_name",
    "bill_invoice_id",
    "bill_invoicing_entity",
    "line_item_usage_account_name",
    "line_item_legal_entity",
    "line_item_line_item_description",
    "line_item_resource_id",
    "line_item_usage_type",
    "product_product_name",
    "product_region",
    "product_region_code",
    "product_sku",
    "pricing_unit",
    "reservation_reservation_a_r_n",
    # FOCUS 1.2's pricing and commitment columns (AWS's "FOCUS 1.2 with AWS columns" mapping).
    "line_item_availability_zone",
    "pricing_rate_code",
    "pricing_term",
    "pricing_public_on_demand_rate",
    "savings_plan_savings_plan_a_r_n",
    # ContractedUnitPrice (a decimal string in CUR 2.0, as the public on-demand rate is).
    "line_item_unblended_rate",
    # CUR 2.0 only, with "INCLUDE CAPACITY RESERVATION DATA" (NULL otherwise).
    "capacity_reservation_capacity_reservation_arn",
    "capacity_reservation_capacity_reservation_status",
)
OPTIONAL_MONEY = (
    "line_item_net_unblended_cost",
    "pricing_public_on_demand_cost",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
    "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
)
OPTIONAL_QUANTITY = ("line_item_usage_amount",)

KNOWN_LINE_ITEM_TYPES = (
    "Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanUpfrontFee",
    "SavingsPlanRecurringFee", "RIFee", "Fee", "Tax", "Credit", "Refund", "BundledDiscount", "EdpDiscount",
    "PrivateRateDiscount", "Discount", "DistributorDiscount", "SppDiscount",
)
USAGE_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
PURCHASE_TYPES = ("Fee", "RIFee", "SavingsPlanUpfrontFee", "SavingsPlanRecurringFee")


class CurFileError(ValueError):
    """A delivery file that cannot be used; names the file (its key) and what is wrong.

    `column` alone: a required column is missing. `column` and `sample`: a value in it is unusable.
    """

    def __init__(self, key: str, problem: str, column: str | None = None, sample: str | None = None):
        self.key = key
        self.problem = problem
        self.column = column
        self.sample = sample
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class CurFile:
    """One downloaded (or local) delivery file: where it is on disk and which key it came from."""

    key: str
    path: Path

    @property
    def kind(self) -> str:
        name = self.path.name.lower()
        if name.endswith(".parquet"):
            return "parquet"
        if name.endswith((".csv", ".csv.gz")):
            return "csv"
        raise CurFileError(self.key, "is neither Parquet nor CSV (.csv, .csv.gz, .csv.zip); CUR delivers only those")


def snake_case(header: str) -> str:
    """`lineItem/UnblendedCost` -> `line_item_unblended_cost`, as AWS names legacy Parquet columns."""
    category, _, attribute = header.partition("/")
    def snake(part: str) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower()
    return f"{snake(category)}_{snake(attribute)}" if attribute else snake(category)


@dataclass
class FileLayout:
    """How one file's columns map onto the canonical names (files with the same layout are read together)."""

    kind: str
    columns: dict[str, str]  # canonical -> raw column name
    tag_columns: tuple[tuple[str, str], ...] = ()  # (tag key, raw column) for legacy per-column tags
    tags_map: str | None = None  # raw name of a CUR 2.0 resource_tags map (JSON text in CSV)
    product_map: str | None = None  # raw name of a CUR 2.0 product map
    ignored: tuple[str, ...] = ()
    header: tuple[str, ...] = ()  # CSV: every column in file order (read_csv needs them all)
    naive_start: bool = False  # Parquet usage start is a TIMESTAMP without zone (UTC, as AWS writes it)
    # Facts the Parquet footers of the whole file group prove (see `parquet_facts`); empty for CSV. Not
    # part of the signature: they are set once the group's files are known.
    facts: ParquetFacts | None = None

    def signature(self) -> tuple:
        return (self.kind, self.header, self.naive_start, tuple(sorted(self.columns.items())), self.tag_columns, self.tags_map, self.product_map)


def read_header(file: CurFile) -> list[str]:
    """Column names from the Parquet footer or the CSV header line, without reading the data."""
    try:
        if file.kind == "parquet":
            return list(pq.read_schema(file.path).names)
        opener = gzip.open if file.path.name.lower().endswith(".gz") else open
        with opener(file.path, "rt", encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
        header = next(csv.reader(io.StringIO(first)), [])
    except CurFileError:
        raise
    except Exception as exc:  # truncated footer, bad gzip header, not UTF-8
        raise CurFileError(file.key, f"is corrupt or truncated and cannot be read ({type(exc).__name__}: {exc})") from exc
    if not header:
        raise CurFileError(file.key, "is empty: it has no header line")
    return header


@dataclass(frozen=True)
class ParquetFacts:
    """What the row-group statistics in a file group's Parquet footers prove about its columns.

    Statistics bound every value (min <= value <= max, a truncated statistic only widens the bounds), so:
    - `constants`: string columns whose min equals max in every row group of every file, without NULLs:
      the column holds that one value on every line (grouping by it, or taking its min, is that value).
    - `all_null`: columns that are NULL on every line.
    - `narrow`: DOUBLE/FLOAT amount columns whose every value is below NARROW_BOUND in magnitude.
    - `nonempty`: string columns whose smallest value is not '': NULLIF(column, '') is the column itself.
    - `tags_injective`: normalizing the tags (sorting entries, dropping empty values) cannot make two
      different raw tag values equal, so the daily rows need no second aggregation for tags.
    Anything a footer does not state (no statistics, nested columns) proves nothing.
    """

    constants: Mapping[str, str] = field(default_factory=dict)
    all_null: frozenset[str] = frozenset()
    narrow: frozenset[str] = frozenset()
    nonempty: frozenset[str] = frozenset()
    tags_injective: bool = False


def parquet_facts(layout: FileLayout, paths: list[Path]) -> ParquetFacts:
    """Read (only) the footers of one group's Parquet files and derive `ParquetFacts`."""
    if layout.kind != "parquet":
        return ParquetFacts()
    # raw column -> merged state: [min, max, null_count, rows, string?, float?, stats complete?]
    merged: dict[str, list] = {}
    for path in paths:
        metadata = pq.ParquetFile(path).metadata
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                name = column.path_in_schema
                stats = column.statistics
                state = merged.setdefault(name, [None, None, 0, 0, True, True, True])
                state[3] += group.num_rows
                if stats is None or not stats.has_null_count:
                    state[6] = False
                    continue
                state[2] += stats.null_count
                state[4] = state[4] and column.physical_type == "BYTE_ARRAY" and str(stats.logical_type) == "String"
                state[5] = state[5] and column.physical_type in ("DOUBLE", "FLOAT")
                if stats.null_count == group.num_rows:
                    continue  # an all-NULL chunk bounds nothing and need not have min/max
                if not stats.has_min_max:
                    state[6] = False
                    continue
                state[0] = stats.min if state[0] is None else min(state[0], stats.min)
                state[1] = stats.max if state[1] is None else max(state[1], stats.max)
    constants: dict[str, str] = {}
    all_null: set[str] = set()
    narrow: set[str] = set()
    nonempty: set[str] = set()
    for name, (low, high, nulls, rows, is_string, is_float, complete) in merged.items():
        if not complete or "." in name:  # nested (map/list) leaves: NULL counts mix empty maps and NULL values
            continue
        if nulls == rows:
            all_null.add(name)
        elif is_string and nulls == 0 and low == high and isinstance(low, str):
            constants[name] = low
        elif is_string and isinstance(low, str) and low != "":
            nonempty.add(name)
        elif is_float and abs(low) < NARROW_BOUND and abs(high) < NARROW_BOUND:
            narrow.add(name)
    return ParquetFacts(constants, frozenset(all_null), frozenset(narrow), frozenset(nonempty), _tags_injective(layout, merged))


def _tags_injective(layout: FileLayout, merged: dict[str, list]) -> bool:
    """Whether the footers prove that tag normalization maps different raw tag values to different tags."""
    if layout.tags_map:
        # Entries are sorted and empty values dropped. Maps with one key at most (every key in every row
        # group is the same string) cannot differ only by order; values never NULL nor '' (the leaf has
        # no NULLs at all, which also rules out empty and NULL maps) are never dropped.
        key, value = merged.get(f"{layout.tags_map}.key_value.key"), merged.get(f"{layout.tags_map}.key_value.value")
        if not key or not value or not key[6] or not value[6]:
            return False
        return (key[2] == 0 and key[0] is not None and key[0] == key[1]
                and value[2] == 0 and isinstance(value[0], str) and value[0] != "")
    if layout.tag_columns:
        # One column per key in a fixed order; NULL and '' both mean "no tag", so two lines can only meet
        # after normalization if one column holds both. A column without NULLs, or whose smallest value
        # is not '', cannot.
        for _, raw in layout.tag_columns:
            state = merged.get(raw)
            if not state or not state[6] or "." in raw:
                return False
            low, nulls, rows = state[0], state[2], state[3]
            if nulls and nulls != rows and (low is None or low == ""):
                return False
        return True
    return True  # no tags at all


def layout_of(file: CurFile) -> FileLayout:
    raw_names = read_header(file)
    columns: dict[str, str] = {}
    tags: list[tuple[str, str]] = []
    tags_map = product_map = None
    ignored = []
    wanted = set(REQUIRED) | set(OPTIONAL_TEXT) | set(OPTIONAL_MONEY) | set(OPTIONAL_QUANTITY)
    for raw in raw_names:
        if raw.startswith("resourceTags/"):
            tags.append((tag_key(raw.split("/", 1)[1]), raw))
            continue
        canonical = snake_case(raw) if "/" in raw else raw
        if canonical == "resource_tags":
            tags_map = raw
        elif canonical.startswith("resource_tags_"):
            tags.append((canonical[len("resource_tags_"):], raw))
        elif canonical == "product":
            product_map = raw
        elif canonical in wanted and canonical not in columns:
            columns[canonical] = raw
        else:
            ignored.append(raw)
    for name in REQUIRED:
        if name not in columns:
            raise CurFileError(file.key, f"lacks the required column {name} (legacy CSV header: "
                               f"{_legacy_header(name)}); the export's schema is not a Cost and Usage Report", column=name)
    header = tuple(raw_names) if file.kind == "csv" else ()
    naive_start = False
    if file.kind == "parquet":
        start_type = pq.read_schema(file.path).field(columns["line_item_usage_start_date"]).type
        naive_start = pa.types.is_timestamp(start_type) and start_type.tz is None
    return FileLayout(file.kind, columns, tuple(tags), tags_map, product_map, tuple(ignored), header, naive_start)


def tag_key(key: str) -> str:
    """Legacy CSV tag keys as CUR 2.0 (and AWS's legacy Parquet) name them: `user:CostCenter` -> `user_cost_center`,
    so one tag has one key in cost_daily whichever CUR format an account delivers."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
    return re.sub(r"[^a-z0-9]+", "_", snake).strip("_") or key


def _legacy_header(canonical: str) -> str:
    for prefix, category in (("line_item_", "lineItem"), ("bill_", "bill"), ("product_", "product"), ("pricing_", "pricing")):
        if canonical.startswith(prefix):
            attribute = "".join(p.capitalize() for p in canonical[len(prefix):].split("_"))
            return f"{category}/{attribute}"
    return canonical


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(layout: FileLayout, paths: list[str]) -> str:
    files = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    if layout.kind == "parquet":
        return f"read_parquet({files})"
    # all_varchar: amounts stay decimal strings until the exact DECIMAL cast; no type sniffing surprises.
    return f"read_csv({files}, header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', auto_detect = false, columns = {_csv_columns(layout)})"  # noqa: E501


def _csv_columns(layout: FileLayout) -> str:
    return "{" + ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in layout.header) + "}"


def _text(layout: FileLayout, name: str) -> str:
    raw = layout.columns.get(name)
    facts = layout.facts
    if facts and raw in facts.all_null:
        return "CAST(NULL AS VARCHAR)"
    if facts and raw in facts.constants:  # the same value on every line: a literal, not a column to hash
        value = facts.constants[raw]
        return f"CAST({sql_literal(value)} AS VARCHAR)" if value != "" else "CAST(NULL AS VARCHAR)"
    if facts and raw in facts.nonempty:  # never '': nothing for NULLIF to do on each line
        return f"CAST({_q(raw)} AS VARCHAR)"
    return f"NULLIF(CAST({_q(raw)} AS VARCHAR), '')" if raw else "CAST(NULL AS VARCHAR)"


def _money(layout: FileLayout, name: str) -> str:
    raw = layout.columns.get(name)
    facts = layout.facts
    if not raw or (facts and raw in facts.all_null):
        # The narrow type: coalesce(NULL, a narrow amount) stays narrow; with a wide one it widens.
        return f"CAST(NULL AS {NARROW_MONEY_SQL})"
    if layout.kind == "csv":
        if name in MONEY_CHECKED:
            # TRY_CAST: a value that is no number is NULL here and flagged by `_suspect` (the same expression, so
            # each amount is parsed once), which sends the pull to the exact checks; they refuse it.
            return f"TRY_CAST({_csv_amount(raw)} AS {MONEY_SQL})"
        return f"CAST(NULLIF(trim({_q(raw)}), '') AS {MONEY_SQL})"
    if facts and raw in facts.narrow:
        return f"CAST({_q(raw)} AS {NARROW_MONEY_SQL})"
    return f"CAST({_q(raw)} AS {MONEY_SQL})"


def _csv_amount(raw: str) -> str:
    """A CSV amount's text, '' as NULL (not trimmed: the cast allows surrounding spaces, `_suspect` flags them)."""
    return f"NULLIF({_q(raw)}, '')"


def _utc_day(layout: FileLayout, name: str) -> str:
    """The UTC day of a timestamp column (the session's TimeZone is UTC).

    Parquet's naive timestamps are UTC already and need no time zone arithmetic (the cheap path for
    the big months); text and zone-aware values go through TIMESTAMPTZ so an offset is honoured.
    """
    raw = layout.columns[name]
    if layout.naive_start:
        return f"CAST({_q(raw)} AS DATE)"
    if layout.kind == "csv":
        # CUR's own form (2026-10-01T00:00:00Z, UTC) parsed with its format, a third cheaper than the general
        # cast, which every other form (an offset, a space, fractions) still goes through.
        return (f"coalesce(CAST(try_strptime({_q(raw)}, '%Y-%m-%dT%H:%M:%SZ') AS DATE), "
                f"CAST(CAST(NULLIF(trim({_q(raw)}), '') AS TIMESTAMPTZ) AS DATE))")
    return f"CAST(CAST({_q(raw)} AS TIMESTAMPTZ) AS DATE)"


def _raw_tags(layout: FileLayout) -> str:
    """The line's tags as stored, as one text key that is cheap to group by: a CUR 2.0 map as its JSON
    text, CSV's JSON text as it is, legacy per-tag columns as a JSON array of their values. Each is
    injective (two different raw values give two different texts); `_tags` normalizes it afterwards, once
    per distinct value."""
    if layout.tags_map:
        raw = _q(layout.tags_map)
        return f"NULLIF({raw}, '')" if layout.kind == "csv" else f"CAST(to_json(CAST({raw} AS MAP(VARCHAR, VARCHAR))) AS VARCHAR)"
    if layout.tag_columns:
        return "CAST(to_json([" + ", ".join(f"CAST({_q(raw)} AS VARCHAR)" for _, raw in sorted(layout.tag_columns)) + "]) AS VARCHAR)"
    return "CAST(NULL AS VARCHAR)"


def _tag_parts(layout: FileLayout) -> dict[str, str]:
    """The grouping keys for the tags: `tags_raw` (a map's JSON text, or CSV's text), or, for legacy per-tag
    columns, each column as its own key (`tag_1` ...): grouping by a dozen mostly empty text columns is
    cheaper than building a JSON array on every line; the array is built per distinct tuple (`_tags_join`)."""
    if layout.tag_columns and not layout.tags_map:
        return {f"tag_{i}": f"CAST({_q(raw)} AS VARCHAR)" for i, (_, raw) in enumerate(sorted(layout.tag_columns), start=1)}
    return {"tags_raw": _raw_tags(layout)}


def _tags_join(layout: FileLayout, staged: str) -> str:
    """A LEFT JOIN (alias t) of the staged rows (alias s) to their FOCUS Tags, normalized once per distinct raw
    value: the `tags_raw` text, or the tuple of legacy `tag_N` columns (as a JSON array only per distinct tuple)."""
    keys = list(_tag_parts(layout))
    raw = "tags_raw" if keys == ["tags_raw"] else "CAST(to_json([" + ", ".join(keys) + "]) AS VARCHAR)"
    on = " AND ".join(f"s.{k} IS NOT DISTINCT FROM t.{k}" for k in keys)
    return (f"LEFT JOIN (SELECT {', '.join(keys)}, {_tags(layout, raw)} AS tags FROM (SELECT DISTINCT {', '.join(keys)} FROM {staged})) t "
            f"ON {on}")


def _tags(layout: FileLayout, raw: str = "tags_raw") -> str:
    """FOCUS Tags (JSON text of the map without empty values, keys sorted; NULL when none) from `_raw_tags`.

    Applied to the distinct raw tag values after the aggregation, not per line nor per daily row.
    """
    if layout.tags_map and layout.kind == "parquet" and layout.facts and layout.facts.tags_injective:
        # The footers prove every map has one key at most and no NULL or empty value: sorting and
        # dropping empty values would change nothing (see `_tags_injective`).
        return f"NULLIF({raw}, '{{}}')"
    if layout.tags_map:
        entries = f"list_sort(map_entries(CAST(json({raw}) AS MAP(VARCHAR, VARCHAR))))"
    elif layout.tag_columns:
        keys = [key for key, _ in sorted(layout.tag_columns)]
        values = f"from_json({raw}, '[\"VARCHAR\"]')"
        entries = "[" + ", ".join(f"{{'key': {sql_literal(k)}, 'value': {values}[{i}]}}" for i, k in enumerate(keys, start=1)) + "]"
        if keys != sorted(keys):
            entries = f"list_sort({entries})"
    else:
        return "CAST(NULL AS VARCHAR)"
    tags = f"map_from_entries(list_filter({entries}, lambda e: e.value IS NOT NULL AND e.value <> ''))"
    return f"NULLIF(CAST(to_json({tags}) AS VARCHAR), '{{}}')"


def _product_name(layout: FileLayout) -> str:
    if "product_product_name" in layout.columns:
        return _text(layout, "product_product_name")
    if layout.product_map:
        raw = _q(layout.product_map)
        if layout.kind == "csv":
            return f"NULLIF(json_extract_string(NULLIF({raw}, ''), '$.product_name'), '')"
        return f"NULLIF(CAST({raw} AS MAP(VARCHAR, VARCHAR))['product_name'], '')"
    return "CAST(NULL AS VARCHAR)"


def canonical_parts(layout: FileLayout) -> dict[str, str]:
    """Canonical line-item column -> SQL expression over this layout's raw columns (NULL when absent)."""
    # RegionId: product_region_code, falling back to product_region (legacy) when the code is empty.
    codes = [_text(layout, n) for n in ("product_region_code", "product_region") if n in layout.columns]
    region = codes[0] if len(codes) == 1 else f"coalesce({', '.join(codes)})" if codes else "CAST(NULL AS VARCHAR)"
    parts = {
        "usage_day": _utc_day(layout, "line_item_usage_start_date"),
        "line_item_type": _text(layout, "line_item_line_item_type"),
        "currency": _text(layout, "line_item_currency_code"),
        "usage_account_id": _text(layout, "line_item_usage_account_id"),
        "product_code": _text(layout, "line_item_product_code"),
        "product_name": _product_name(layout),
        "region": region,
        **_tag_parts(layout),
        "unblended": _money(layout, "line_item_unblended_cost"),
        "usage_amount": _money(layout, "line_item_usage_amount"),
    }
    for name in OPTIONAL_TEXT:
        if name not in ("product_product_name", "product_region", "product_region_code"):
            parts[name] = _text(layout, name)
    for name in OPTIONAL_MONEY:
        parts[name] = _money(layout, name)
    return parts


def _is_null(expression: str) -> bool:
    return expression.startswith("CAST(NULL AS")


def _is_constant(expression: str) -> bool:
    """A literal (NULL or a value the footers prove constant): nothing to group by or aggregate per line."""
    return expression.startswith(("CAST(NULL AS", "CAST('"))


def canonical_select(layout: FileLayout, paths: list[str]) -> str:
    """One SELECT that projects a group of same-layout files onto the canonical line-item columns."""
    select = ", ".join(f"{expression} AS {alias}" for alias, expression in canonical_parts(layout).items())
    return f"SELECT {select} FROM {_source(layout, paths)}"


def group_files(files: Iterable[CurFile]) -> list[tuple[FileLayout, list[CurFile]]]:
    """Files with the same layout are read by one read_parquet / read_csv call."""
    groups: dict[tuple, tuple[FileLayout, list[CurFile]]] = {}
    for file in files:
        layout = layout_of(file)
        groups.setdefault(layout.signature(), (layout, []))[1].append(file)
    if USE_PARQUET_FACTS:
        for layout, members in groups.values():
            layout.facts = parquet_facts(layout, [f.path for f in members])
    return list(groups.values())


# The footer-derived shortcuts (constants, narrow decimals, no second aggregation) can be turned off, so
# the tests can show both paths produce the same partition.
USE_PARQUET_FACTS = True


GRAIN = ("currency", "bill_payer_account_id", "bill_payer_account_name", "usage_account_id", "line_item_usage_account_name",
         "product_code", "product_name", "region", "line_item_resource_id", "line_item_type", "line_item_usage_type",
         "product_sku", "pricing_unit", "bill_invoicing_entity", "line_item_legal_entity", "bill_invoice_id",
         "line_item_availability_zone", "pricing_rate_code", "pricing_term", "pricing_public_on_demand_rate",
         "savings_plan_savings_plan_a_r_n", "reservation_reservation_a_r_n", "line_item_unblended_rate",
         "capacity_reservation_capacity_reservation_arn", "capacity_reservation_capacity_reservation_status")


def _stage_select(layout: FileLayout, paths: list[str]) -> str:
    """The one pass over a file group: its line items -> per day, raw grain and raw tag text.

    Besides the cost sums it counts the line items and flags lines whose amounts may be unusable
    (`_suspect`), so the reconciliation totals and the value checks come from this result instead of
    a second read of the files (`staged_totals`). Grain columns that are constant (absent, or one value
    on every line per the Parquet footers) are left out of the GROUP BY (hashing a constant per line
    costs time) and added back as literals by `_daily_select`.
    """
    parts = canonical_parts(layout)
    present = [k for k in GRAIN if not _is_constant(parts[k])]
    keys = "".join(f"{k}, " for k in present)
    # Without a net unblended (or public on-demand) column, BilledCost (ListCost) is the unblended sum:
    # computed once, which keeps the aggregate state, and so the memory, smaller.
    net = not _is_null(parts["line_item_net_unblended_cost"])
    public = not _is_null(parts["pricing_public_on_demand_cost"])
    billed_sum = f"sum({BILLED}) AS billed," if net else ""
    list_sum = "sum(coalesce(pricing_public_on_demand_cost, unblended)) AS list," if public else ""
    # A varying description is a group key here (its minimum is taken by the rollup's second aggregation,
    # over the much smaller staged rows). Keyed by its hash with min() of the text instead, the grouping costs
    # a sixth less CPU on 2 million legacy lines, but the per-group copies of the text live outside DuckDB's
    # memory limit: 40 million lines then peaked at 1,538 MiB and took twice the CPU (measured). min() of text
    # over groups keyed without the description costs several times the grouping itself (measured). A constant
    # (or absent) description is every group's min; a constant (or absent) invoice id marks all or none estimated.
    description_key = "" if _is_constant(parts["line_item_line_item_description"]) else "line_item_line_item_description AS description,"
    estimated_agg = "" if _is_constant(parts["bill_invoice_id"]) else "bool_or(bill_invoice_id IS NULL) AS estimated,"
    suspect = _suspect(layout, paths)
    suspect_agg = "bool_or(suspect_line) AS suspect," if suspect != "false" else "false AS suspect,"
    projection = ", ".join(f"{expression} AS {alias}" for alias, expression in parts.items())
    tag_keys = ", ".join(_tag_parts(layout))
    return f"""
        SELECT usage_day AS day, {keys}{tag_keys}, {description_key} {billed_sum} {list_sum} {estimated_agg} {suspect_agg}
               sum({_effective(parts)}) AS effective, sum(unblended) AS contracted,
               sum(usage_amount) AS usage_amount, count(*) AS line_items
        FROM (SELECT {projection}{f", {suspect} AS suspect_line" if suspect != "false" else ""} FROM {_source(layout, paths)})
        GROUP BY day, {keys}{tag_keys}{", description" if description_key else ""}"""


def _suspect(layout: FileLayout, paths: list[str]) -> str:
    """SQL: true for a line whose amounts might fail a value check of `_value_checks` (a cheap superset of
    them: when no line is suspect, none fails; when one is, `raw_totals` runs the exact checks).

    A value that is no number at all fails the per-line cast of the rollup itself, which also sends
    the pull to the exact checks. DOUBLE amounts: the exact check itself (arithmetic only). Text
    amounts: anything but plain digits with a sign and at most 10 decimals (trailing zeros aside).
    """
    types = _parquet_types(layout, paths)
    facts = layout.facts
    conditions = []
    for name in dict.fromkeys(MONEY_CHECKED):
        raw = layout.columns.get(name)
        if not raw or (facts and raw in facts.all_null):
            continue
        column = _q(raw)
        kind = types.get(raw)
        if kind is not None and pa.types.is_floating(kind):
            back = f"CAST(CAST({column} AS {NARROW_MONEY_SQL if facts and raw in facts.narrow else MONEY_SQL}) AS DOUBLE)"
            # A value that comes back unchanged (nearly all) skips the tolerance arithmetic.
            conditions.append(f"({column} <> {back} AND abs({column} - {back}) > greatest(1e-11, abs({column}) * 1e-15))")
        elif kind is None or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            # Flagged: what does not cast, any character but digits, sign and point (an exponent, digit
            # separators, spaces), more than 10 decimals (trailing zeros aside). The first two tests are the
            # cheap ones that decide for AWS's 10-decimal amounts.
            text = _csv_amount(raw) if layout.kind == "csv" else f"NULLIF(CAST({column} AS VARCHAR), '')"
            point = f"strpos({text}, '.')"
            conditions.append(f"({text} IS NOT NULL AND (TRY_CAST({text} AS {MONEY_SQL}) IS NULL OR regexp_matches({text}, '[^0-9.+-]') "
                              f"OR ({point} > 0 AND length({text}) - {point} > 10 AND length(rtrim({text}, '0')) - {point} > 10)))")
        else:
            conditions.append(f"({column} IS NOT NULL AND TRY_CAST({column} AS {MONEY_SQL}) IS NULL)")
    return " OR ".join(conditions) if conditions else "false"


def _daily_select(layout: FileLayout, staged: str) -> str:
    """A group's staged rows in the rollup's input shape: constant grain columns as literals, and Tags
    normalized once per distinct raw tag value (joined back), not per row."""
    parts = canonical_parts(layout)
    present = [k for k in GRAIN if not _is_constant(parts[k])]
    outputs = ", ".join(f"s.{k}" if k in present else f"{parts[k]} AS {k}" for k in GRAIN)
    net = not _is_null(parts["line_item_net_unblended_cost"])
    public = not _is_null(parts["pricing_public_on_demand_cost"])
    description = parts["line_item_line_item_description"]
    invoice = parts["bill_invoice_id"]
    description_out = f"{description} AS description" if _is_constant(description) else "s.description"
    estimated_out = (("true" if _is_null(invoice) else "false") + " AS estimated") if _is_constant(invoice) else "s.estimated"
    # Rules that read only a few grain columns run once per distinct value of those (40 products, a handful of
    # units, thousands of resources) and are joined back, not once per daily row (measured: 0.4 s CPU of the
    # rollup at 124,000 daily rows for the unit and resource-type rules alone).
    lookups = [_per_distinct(staged, parts, present, "p", ("product_name", "product_code"), _services),
               _per_distinct(staged, parts, present, "u", ("pricing_unit",),
                             lambda column: {"focus_unit": focus_unit_sql(column("pricing_unit"))}),
               _per_distinct(staged, parts, present, "r", ("line_item_resource_id", "product_code"),
                             lambda column: {"resource_type": resource_type_sql(column("line_item_resource_id"), column("product_code"))})]
    return f"""
        SELECT s.day, {outputs}, t.tags, {", ".join(select for _, select in lookups)},
               s.{"billed" if net else "contracted"} AS billed, s.effective, s.{"list" if public else "contracted"} AS list,
               s.contracted, s.usage_amount, {description_out}, {estimated_out}, s.line_items, s.suspect
        FROM {staged} s
             {_tags_join(layout, staged)}
             {" ".join(join for join, _ in lookups)}"""


# Columns the rollup reads from `_per_distinct` lookups: functions of grain columns, so never extra groups.
LOOKUP_COLUMNS = ("service_name", "service_category", "service_subcategory", "focus_unit", "resource_type")


def _per_distinct(staged: str, parts: Mapping[str, str], present: list[str], alias: str, sources: tuple[str, ...],
                  outputs: Callable[[Callable[[str], str]], dict[str, str]]) -> tuple[str, str]:
    """(LEFT JOIN clause, select list): `outputs` computed once per distinct value of the `sources` grain columns
    in the staged rows, joined back by them. `outputs` receives a function naming a source column, which gives
    the literal of a column constant in the files (then there is nothing to join)."""
    keys = [k for k in sources if k in present]
    expressions = outputs(lambda name: name if name in keys else parts[name])
    if not keys:
        return "", ", ".join(f"{expression} AS {name}" for name, expression in expressions.items())
    on = " AND ".join(f"s.{k} IS NOT DISTINCT FROM {alias}.{k}" for k in keys)
    listed = ", ".join(keys)
    computed = ", ".join(f"{expression} AS {name}" for name, expression in expressions.items())
    join = f"LEFT JOIN (SELECT {listed}, {computed} FROM (SELECT DISTINCT {listed} FROM {staged})) {alias} ON {on}"
    return join, ", ".join(f"{alias}.{name}" for name in expressions)


def _services(column: Callable[[str], str]) -> dict[str, str]:
    """FOCUS ServiceName, ServiceCategory and ServiceSubcategory (never NULL: a service the mapping does not know
    is 'Other (<its category>)') from the product name and code."""
    product = f"coalesce({column('product_name')}, {column('product_code')})"
    name = service_name_sql(f"coalesce({product}, 'Unknown')")
    category = f"coalesce({service_category_sql(name)}, 'Other')"
    subcategory = f"coalesce({service_subcategory_sql(product)}, 'Other (' || {category} || ')')"
    return {"service_name": name, "service_category": category, "service_subcategory": subcategory}


def needs_reaggregation(groups: list[tuple[FileLayout, list[CurFile]]]) -> bool:
    """Whether the footers leave open that two daily rows meet in one final grain (then `grain_unique` looks).

    Each group's daily rows are unique per day, grain and raw tags (and description, when it varies: see
    `descriptions_vary`). Rows of two groups can share a grain, and two raw tag values can normalize
    alike; with one group whose footers prove tag normalization injective (`ParquetFacts.tags_injective`),
    neither can happen.
    """
    if len(groups) != 1:
        return True
    facts = groups[0][0].facts
    return not (facts and facts.tags_injective)


def daily_sql(groups: list[tuple[FileLayout, list[CurFile]]], staged: list[str] | None = None) -> str:
    """Every file group's daily pre-aggregate, in one relation (the rollup's input).

    `staged`: the tables `stage` wrote, one per group, already in this shape (the pull's path: the files
    were read once); without it each group's pass over its files is a subquery here.
    """
    if staged:
        return "\nUNION ALL BY NAME\n".join(f"SELECT * FROM {table}" for table in staged)
    sources = [f"({_stage_select(layout, [str(f.path) for f in files])})" for layout, files in groups]
    return "\nUNION ALL BY NAME\n".join(_daily_select(layout, source) for (layout, _), source in zip(groups, sources))


def descriptions_vary(groups: list[tuple[FileLayout, list[CurFile]]]) -> bool:
    """Whether a group's staged rows are keyed by description too (not proven constant by its footers), so
    one grain can have several staged rows, which the rollup then aggregates (the minimum description) unless
    `grain_unique` finds none in the data."""
    return any(not _is_constant(canonical_parts(layout)["line_item_line_item_description"]) for layout, _ in groups)


def grain_unique(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]], staged: list[str]) -> bool:
    """Whether no two daily rows share a final grain (day, grain columns, normalized Tags), looked up in the data:
    then the rollup needs no second aggregation, whatever the footers could not prove (tags that might
    normalize alike, several descriptions, several file groups).

    Exact, not probabilistic: equal grains hash alike, so as many distinct hashes as rows means no two rows
    share a grain (a hash collision only makes the answer False, and the rollup aggregates as before).
    """
    if not groups:
        return True
    keys = ", ".join(("day", *GRAIN, "tags"))
    rows, distinct = connection.execute(f"SELECT count(*), count(DISTINCT hash({keys})) FROM ({daily_sql(groups, staged)})").fetchone()
    return rows == distinct


def stage(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]]) -> list[str]:
    """Read each file group once into a temporary table of its daily pre-aggregate, in the rollup's input
    shape (`_daily_select`: tags and services normalized once, here, not by each query that reads it;
    DuckDB keeps it within its memory limit, spilling to the temporary directory); returns the tables' names."""
    tables = []
    for number, (layout, files) in enumerate(groups):
        name = f"cur_stage_{number}"
        connection.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS
            WITH staged AS MATERIALIZED ({_stage_select(layout, [str(f.path) for f in files])})
            {_daily_select(layout, "staged")}""")
        tables.append(name)
    return tables


def staged_totals(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]], tables: list[str],
                  billing_period: str | None = None) -> RawTotals:
    """The reconciliation figures from the staged pre-aggregates: exact, since decimal sums of sums are the sums.

    The totals need no second read of the files unless something may be wrong (a line without a
    currency or a date, a date outside the period, a suspect amount): then `raw_totals` reads the files
    again with the exact checks, which name the file, the column and a sample, as they always did.
    """
    if billing_period:
        start, end = month_bounds(billing_period)
        dated = (f"count(*) FILTER (WHERE day >= DATE '{end.date().isoformat()}' OR day < DATE '{start.date().isoformat()}' "
                 f"AND coalesce(line_item_type, '') NOT IN {_in(CORRECTION_TYPES)})")
    else:
        dated = "0"
    rows = []
    for table in tables:
        rows += connection.execute(f"""
            SELECT currency, line_item_type, sum(line_items), sum(billed), sum(contracted),
                   count(*) FILTER (WHERE day IS NULL) + count(*) FILTER (WHERE currency IS NULL) + {dated} + count(*) FILTER (WHERE suspect)
            FROM {table} GROUP BY ALL""").fetchall()
    if any(problems for *_, problems in rows):
        return raw_totals(connection, groups, billing_period)
    totals = RawTotals()
    for currency, kind, count, billed, unblended, _ in rows:
        kind = kind or "(empty)"
        totals.line_items += int(count)
        totals.by_type[kind] = totals.by_type.get(kind, 0) + int(count)
        sum_by_currency([(currency, billed)], totals.billed)
        sum_by_currency([(currency, unblended)], totals.unblended)
    return totals


def stage_and_total(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]],
                    billing_period: str | None = None) -> tuple[list[str], RawTotals]:
    """`stage` then `staged_totals`. When the one pass fails (a value the per-line casts refuse), the exact
    checks of `raw_totals` run first so the error names the file, the column and a sample."""
    try:
        tables = stage(connection, groups)
    except duckdb.Error:
        raw_totals(connection, groups, billing_period)  # raises CurFileError when a value check fails
        raise
    return tables, staged_totals(connection, groups, tables, billing_period)


# --- FOCUS rules ------------------------------------------------------------------------------------

def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


BILLED = "coalesce(line_item_net_unblended_cost, unblended)"
ZERO = f"CAST(0 AS {NARROW_MONEY_SQL})"  # the narrowest zero, so a CASE of narrow amounts stays narrow


def _effective(parts: Mapping[str, str]) -> str:
    """EffectiveCost per line item type, for one layout (design.md's rules): branches that cannot apply
    (their columns absent) are left out, so a CASE over narrow amounts stays a narrow decimal per line."""
    def present(*names: str) -> bool:
        return not all(_is_null(parts[n]) for n in names)
    branches = [f"WHEN line_item_type = 'SavingsPlanCoveredUsage' THEN coalesce(savings_plan_savings_plan_effective_cost, {BILLED})"]
    if not _is_null(parts["savings_plan_total_commitment_to_date"]) and not _is_null(parts["savings_plan_used_commitment"]):
        branches.append(f"WHEN line_item_type = 'SavingsPlanRecurringFee' THEN coalesce(savings_plan_total_commitment_to_date - savings_plan_used_commitment, {BILLED})")  # noqa: E501
    branches.append(f"WHEN line_item_type IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee') THEN {ZERO}")
    branches.append(f"WHEN line_item_type = 'DiscountedUsage' THEN coalesce(reservation_effective_cost, {BILLED})")
    if present("reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee"):
        branches.append("WHEN line_item_type = 'RIFee' AND (reservation_unused_amortized_upfront_fee_for_billing_period IS NOT NULL OR reservation_unused_recurring_fee IS NOT NULL) "  # noqa: E501
                        "THEN coalesce(reservation_unused_amortized_upfront_fee_for_billing_period, 0) + coalesce(reservation_unused_recurring_fee, 0)")
    if present("reservation_reservation_a_r_n"):
        branches.append(f"WHEN line_item_type = 'Fee' AND reservation_reservation_a_r_n IS NOT NULL THEN {ZERO}")
    return "CASE\n    " + "\n    ".join(branches) + f"\n    ELSE {BILLED} END"


CHARGE_CATEGORY = f"""CASE
    WHEN line_item_type = 'Tax' THEN 'Tax'
    WHEN line_item_type IN {_in(PURCHASE_TYPES)} THEN 'Purchase'
    WHEN line_item_type = 'Credit' THEN 'Credit'
    WHEN line_item_type = 'Refund' THEN 'Adjustment'
    ELSE 'Usage' END"""


_LATER = [c.name for c in COLUMNS][[c.name for c in COLUMNS].index("Tags") + 1:[c.name for c in COLUMNS].index("x_Provider")]


COMMITMENT_ARN = "coalesce(savings_plan_savings_plan_a_r_n, reservation_reservation_a_r_n)"
COMMITTED_USAGE = ("DiscountedUsage", "SavingsPlanCoveredUsage")
COMMITMENT_FEES = ("RIFee", "SavingsPlanRecurringFee")
ONE_TIME = ("Fee", "SavingsPlanUpfrontFee")


# FOCUS allows Used and Unused only. CUR 2.0 also writes Reserved and Cancelled (a future-dated reservation
# reserved or cancelled): on a Usage charge the capacity was not consumed, so Unused; on other charges NULL.
# Without a status (older files) the unused-capacity lines are told by their usage type (`...UnusedBox...`).
CAPACITY_RESERVATION_STATUS = f"""CASE
    WHEN capacity_reservation_capacity_reservation_arn IS NULL THEN NULL
    WHEN capacity_reservation_capacity_reservation_status IN ('Used', 'Unused') THEN capacity_reservation_capacity_reservation_status
    WHEN ({CHARGE_CATEGORY}) <> 'Usage' THEN NULL
    WHEN capacity_reservation_capacity_reservation_status IS NULL AND coalesce(line_item_usage_type, '') NOT LIKE '%Unused%' THEN 'Used'
    ELSE 'Unused' END"""


def focus_12_outputs() -> dict[str, str]:
    """FOCUS 1.2's pricing and commitment columns from the CUR line (AWS's FOCUS 1.2 mapping; see docs/aws_cur.md)."""
    arn = COMMITMENT_ARN
    commitment = f"({arn} IS NOT NULL AND line_item_type IN {_in(COMMITTED_USAGE + COMMITMENT_FEES + ONE_TIME + ('SavingsPlanNegation',))})"
    kind = f"CASE WHEN {arn} LIKE '%:savingsplans%' OR line_item_type LIKE 'SavingsPlan%' THEN 'Savings Plan' ELSE 'Reservation' END"
    priced = "line_item_type NOT IN ('Tax', 'Credit', 'Refund')"
    return {
        "AvailabilityZone": "line_item_availability_zone",
        "BillingAccountType": "'Payer Account'",
        "ChargeFrequency": (f"CASE WHEN line_item_type IN {_in(ONE_TIME)} THEN 'One-Time' "
                            f"WHEN line_item_type IN {_in(COMMITMENT_FEES)} THEN 'Recurring' ELSE 'Usage-Based' END"),
        "CommitmentDiscountCategory": f"CASE WHEN {commitment} THEN (CASE WHEN {kind} = 'Savings Plan' THEN 'Spend' ELSE 'Usage' END) END",
        "CommitmentDiscountId": f"CASE WHEN {commitment} THEN {arn} END",
        "CommitmentDiscountName": f"CASE WHEN {commitment} THEN regexp_extract({arn}, '[^/:]+$') END",
        "CommitmentDiscountStatus": f"CASE WHEN {commitment} AND line_item_type IN {_in(COMMITTED_USAGE)} THEN 'Used' END",
        "CommitmentDiscountType": f"CASE WHEN {commitment} THEN {kind} END",
        "InvoiceId": "bill_invoice_id",
        "CapacityReservationId": "capacity_reservation_capacity_reservation_arn",
        "ResourceType": "resource_type",  # per distinct resource (`_daily_select`)
        "CapacityReservationStatus": CAPACITY_RESERVATION_STATUS,
        # The unblended rate is what line_item_unblended_cost (ContractedCost) is priced at per pricing unit, so
        # ContractedCost = ContractedUnitPrice x PricingQuantity, on DiscountedUsage too (rate and cost both 0 there).
        "ContractedUnitPrice": f"CASE WHEN {priced} THEN TRY_CAST(line_item_unblended_rate AS {MONEY_SQL}) END",
        "ListUnitPrice": f"CASE WHEN {priced} THEN TRY_CAST(pricing_public_on_demand_rate AS {MONEY_SQL}) END",
        "PricingCategory": (f"CASE WHEN NOT {priced} THEN NULL "
                            f"WHEN line_item_type IN {_in(COMMITTED_USAGE)} THEN 'Committed' "
                            "WHEN pricing_term = 'Spot' OR line_item_usage_type LIKE '%SpotUsage%' THEN 'Dynamic' "
                            "WHEN pricing_term = 'OnDemand' OR line_item_type = 'Usage' THEN 'Standard' ELSE 'Other' END"),
        # AWS prices in USD; tax, credits and refunds are charged in the billing currency.
        "PricingCurrency": f"CASE WHEN {priced} THEN 'USD' ELSE currency END",
        # The mapping runs once per distinct product (`_daily_select`).
        "ServiceSubcategory": "service_subcategory",
        "SkuMeter": "CASE WHEN line_item_type <> 'Tax' THEN line_item_usage_type END",
        "SkuPriceId": "CASE WHEN line_item_type <> 'Tax' THEN pricing_rate_code END",
        "SubAccountType": "CASE WHEN usage_account_id IS NOT NULL THEN 'Linked Account' END",
        "ServiceProviderName": sql_literal(PROVIDER.focus_name),
        "HostProviderName": sql_literal(PROVIDER.focus_name),
    }


def rollup_sql(daily: str, *, account_id: str, account_name: str, account_key: str, billing_period: str,
               source_updated_at: datetime, ingested_at: datetime, reaggregate: bool = True) -> str:
    """The groups' daily pre-aggregates -> one row per day and grain, in exactly the cost_daily columns and types.

    Re-aggregated here because two file groups (or two raw tag sets that normalize alike) can meet in one
    grain; `reaggregate=False` (only when the footers or `grain_unique` prove no two daily rows do) maps each
    daily row to its output row as it is, which gives the same rows.
    """
    def agg(function: str, column: str) -> str:
        return f"{function}({column})" if reaggregate else column

    period_start, period_end = month_bounds(billing_period)
    ts = lambda value: f"CAST({sql_literal(value.isoformat())} AS TIMESTAMPTZ)"  # noqa: E731
    day_start = "CAST(day AS TIMESTAMPTZ)"
    outputs = {
        "BilledCost": agg("sum", "billed"),
        "EffectiveCost": agg("sum", "effective"),
        "ListCost": agg("sum", "list"),
        "ContractedCost": agg("sum", "contracted"),
        "BillingCurrency": "currency",
        "BillingPeriodStart": ts(period_start),
        "BillingPeriodEnd": ts(period_end),
        "ChargePeriodStart": day_start,
        "ChargePeriodEnd": f"{day_start} + INTERVAL 1 DAY",
        "ChargeCategory": CHARGE_CATEGORY,
        "ChargeClass": f"CASE WHEN {day_start} < {ts(period_start)} THEN 'Correction' END",
        "ChargeDescription": agg("min", "description"),
        "BillingAccountId": f"coalesce(bill_payer_account_id, {sql_literal(account_id)})",
        "BillingAccountName": f"coalesce(bill_payer_account_name, {sql_literal(account_name)})",
        "SubAccountId": "usage_account_id",
        "SubAccountName": "coalesce(line_item_usage_account_name, usage_account_id)",
        "InvoiceIssuerName": "coalesce(bill_invoicing_entity, 'Amazon Web Services')",
        "ProviderName": sql_literal(PROVIDER.focus_name),
        "PublisherName": f"coalesce(line_item_legal_entity, {sql_literal(PROVIDER.focus_name)})",
        "ServiceName": "service_name",  # per distinct product (`_daily_select`)
        "ServiceCategory": "service_category",
        "RegionId": "region",
        "RegionName": region_name_sql("region"),
        "ResourceId": "line_item_resource_id",
        "ResourceName": "CAST(NULL AS VARCHAR)",
        "SkuId": "CASE WHEN line_item_type <> 'Tax' THEN product_sku END",
        "PricingQuantity": agg("sum", "usage_amount"),
        # units in FOCUS UnitFormat ("Hrs" -> "Hours", "GB-Mo" -> "GB-Months": schema.focus_unit)
        "PricingUnit": f"CASE WHEN {agg('sum', 'usage_amount')} IS NOT NULL THEN focus_unit END",  # per distinct unit
        "ConsumedQuantity": f"CASE WHEN line_item_type IN {_in(USAGE_TYPES)} THEN {agg('sum', 'usage_amount')} END",
        "ConsumedUnit": f"CASE WHEN line_item_type IN {_in(USAGE_TYPES)} THEN focus_unit END",
        "Tags": "tags",
        **{c.name: f"CAST(NULL AS {_sql_type(c)})" for c in COLUMNS if c.name in _LATER},
        **focus_12_outputs(),
        "x_Provider": "'aws'",
        "x_Source": "'cur'",
        "x_AccountKey": sql_literal(account_key),
        "x_Estimated": agg("bool_or", "estimated"),
        "x_SourceChargeType": "line_item_type",
        "x_CurrencyConversionRate": f"CAST(NULL AS {MONEY_SQL})",
        "x_SourceUpdatedAt": ts(source_updated_at),
        "x_IngestedAt": ts(ingested_at),
    }
    assert list(outputs) == [c.name for c in COLUMNS], "rollup_sql must produce the cost_daily columns in order"
    casts = {c.name: _sql_type(c) for c in COLUMNS}
    select = ",\n        ".join(f"CAST({expr} AS {casts[name]}) AS {_q(name)}" for name, expr in outputs.items())
    grouping = ("day, currency, bill_payer_account_id, bill_payer_account_name, usage_account_id, line_item_usage_account_name, "
                "product_code, product_name, region, line_item_resource_id, line_item_type, line_item_usage_type, product_sku, "
                "pricing_unit, bill_invoicing_entity, line_item_legal_entity, tags, " + ", ".join(GRAIN[GRAIN.index("bill_invoice_id"):])
                + ", " + ", ".join(LOOKUP_COLUMNS))
    # Read by the output rows and the unused-commitment rows: computed once when it aggregates; otherwise
    # inlined, so the second reader's filter (commitment fees only) is applied before the projection.
    mode = "MATERIALIZED" if reaggregate else "NOT MATERIALIZED"
    return f"""
    WITH rolled AS {mode} (SELECT {select}\n    FROM ({daily})\n    {"GROUP BY " + grouping if reaggregate else ""})
    SELECT rolled.* REPLACE ({_purchase_effective()} AS "EffectiveCost",
                             CASE WHEN rolled."PricingCurrency" = rolled."BillingCurrency" THEN {_purchase_effective()} END
                                 AS "PricingCurrencyEffectiveCost",
                             CASE WHEN rolled."PricingCurrency" = rolled."BillingCurrency" THEN rolled."ListUnitPrice" END
                                 AS "PricingCurrencyListUnitPrice",
                             CASE WHEN rolled."PricingCurrency" = rolled."BillingCurrency" THEN rolled."ContractedUnitPrice" END
                                 AS "PricingCurrencyContractedUnitPrice")
    FROM rolled
    UNION ALL
    {_unused_commitment()}"""


def _purchase_effective() -> str:
    """FOCUS: a commitment fee covers future (or this period's) usage, so its row's EffectiveCost is 0; the
    amortized amount is on the covered usage and the unused part on its own row (`_unused_commitment`)."""
    return (f'CASE WHEN rolled."x_SourceChargeType" IN {_in(COMMITMENT_FEES)} THEN CAST(0 AS {MONEY_SQL}) '
            'ELSE rolled."EffectiveCost" END')


def _unused_commitment() -> str:
    """One Usage row per commitment fee row with unused commitment (CUR's RIFee / SavingsPlanRecurringFee
    effective amount: the unused amortized upfront plus unused recurring fee): BilledCost 0, the unused
    amount as EffectiveCost, CommitmentDiscountStatus Unused. BilledCost and EffectiveCost totals stay as before."""
    zero = f"CAST(0 AS {MONEY_SQL})"
    return f"""SELECT rolled.* REPLACE (CASE WHEN rolled."PricingCurrency" = rolled."BillingCurrency" THEN rolled."EffectiveCost" END
                                 AS "PricingCurrencyEffectiveCost",
                             CAST(NULL AS {MONEY_SQL}) AS "PricingCurrencyListUnitPrice",
                             CAST(NULL AS {MONEY_SQL}) AS "PricingCurrencyContractedUnitPrice",
                             CAST(NULL AS {MONEY_SQL}) AS "ContractedUnitPrice",
                             CAST(NULL AS VARCHAR) AS "CapacityReservationId", CAST(NULL AS VARCHAR) AS "CapacityReservationStatus",
                             {zero} AS "BilledCost", {zero} AS "ListCost", {zero} AS "ContractedCost",
                             'Usage' AS "ChargeCategory", 'Usage-Based' AS "ChargeFrequency",
                             CASE WHEN "CommitmentDiscountId" IS NOT NULL THEN 'Unused' END AS "CommitmentDiscountStatus",
                             'Committed' AS "PricingCategory",
                             CAST(NULL AS {MONEY_SQL}) AS "ListUnitPrice",
                             CAST(NULL AS {MONEY_SQL}) AS "PricingQuantity", CAST(NULL AS VARCHAR) AS "PricingUnit",
                             CAST(NULL AS {MONEY_SQL}) AS "ConsumedQuantity", CAST(NULL AS VARCHAR) AS "ConsumedUnit")
    FROM rolled
    WHERE rolled."x_SourceChargeType" IN {_in(COMMITMENT_FEES)} AND rolled."EffectiveCost" <> 0"""


def _sql_type(column) -> str:
    if pa.types.is_decimal(column.type):
        return f"DECIMAL({column.type.precision},{column.type.scale})"
    if pa.types.is_timestamp(column.type):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(column.type):
        return "BOOLEAN"
    return "VARCHAR"


# --- raw totals (the reconciliation figure) ---------------------------------------------------------

@dataclass
class RawTotals:
    billed: dict[str, Decimal] = field(default_factory=dict)  # per currency: net unblended where given, else unblended
    unblended: dict[str, Decimal] = field(default_factory=dict)
    line_items: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def unknown_types(self) -> dict[str, int]:
        return {t: n for t, n in sorted(self.by_type.items()) if t not in KNOWN_LINE_ITEM_TYPES}


# Line items dated before their billing period are legitimate only as corrections of earlier periods
# (refunds, credits, their tax and discounts: ChargeClass Correction); usage, fees and purchases are
# always billed in their own period. Nothing AWS bills is dated at or after the period's end.
CORRECTION_TYPES = ("Refund", "Credit", "Tax", "BundledDiscount", "EdpDiscount", "PrivateRateDiscount", "Discount",
                    "DistributorDiscount", "SppDiscount")
# A decimal string DECIMAL(38,10) holds exactly: at most 28 integer digits and 10 decimals (zeros aside).
_EXACT_DECIMAL = r"[-+]?0*[0-9]{0,28}(\.[0-9]{0,10}0*)?"
_EXPONENT = r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+"
MONEY_CHECKED = ("line_item_unblended_cost", "line_item_net_unblended_cost", *[m for m in OPTIONAL_MONEY])


def _parquet_types(layout: FileLayout, paths: list[str]) -> dict[str, pa.DataType]:
    if layout.kind != "parquet" or not paths:
        return {}
    schema = pq.read_schema(paths[0])
    return {name: schema.field(name).type for name in schema.names}


def _unusable_amount(layout: FileLayout, raw: str, types: Mapping[str, pa.DataType]) -> str:
    """SQL: true where the raw value is not an amount DECIMAL(38,10) holds exactly (text that is no number,
    too many digits, NaN/infinite, beyond 10^28). A DOUBLE is read as its nearest 10-decimal value, as
    designed; only a difference beyond a double's own noise is refused."""
    column = _q(raw)
    kind = types.get(raw)
    if kind is not None and pa.types.is_floating(kind):
        exact = f"CAST(CAST({column} AS {MONEY_SQL}) AS DOUBLE)"
        return (f"CASE WHEN {column} IS NULL THEN false WHEN isnan({column}) OR isinf({column}) OR abs({column}) >= 1e27 THEN true "
                f"ELSE abs({column} - {exact}) > greatest(1e-11, abs({column}) * 1e-15) END")
    if kind is not None and not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
        return f"({column} IS NOT NULL AND TRY_CAST({column} AS {MONEY_SQL}) IS NULL)"
    text = f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"
    return (f"({text} IS NOT NULL AND NOT coalesce(regexp_full_match({text}, {sql_literal(_EXACT_DECIMAL)}) AND regexp_matches({text}, '[0-9]') "
            f"AND TRY_CAST({text} AS {MONEY_SQL}) IS NOT NULL "
            f"OR regexp_full_match({text}, {sql_literal(_EXPONENT)}) AND TRY_CAST({text} AS {MONEY_SQL}) IS NOT NULL "
            f"AND CAST(TRY_CAST({text} AS {MONEY_SQL}) AS DOUBLE) = TRY_CAST({text} AS DOUBLE), false))")


def _value_checks(layout: FileLayout, paths: list[str], billing_period: str | None) -> list[tuple[str, str, str, str]]:
    """(column, problem, SQL condition of a bad line, SQL sample) for every value check of one layout."""
    types = _parquet_types(layout, paths)
    checks = []
    for name in MONEY_CHECKED:
        raw = layout.columns.get(name)
        if raw:
            checks.append((name, f"holds a value in {name} that is not an exact amount (a number DECIMAL(38,10) holds: at most 28 "
                           "integer digits and 10 decimals)", _unusable_amount(layout, raw, types), f"CAST({_q(raw)} AS VARCHAR)"))
    if billing_period:
        start, end = month_bounds(billing_period)
        day = _utc_day(layout, "line_item_usage_start_date")
        raw_start = f"CAST({_q(layout.columns['line_item_usage_start_date'])} AS VARCHAR)"
        kind = f"CAST({_q(layout.columns['line_item_line_item_type'])} AS VARCHAR)"
        checks.append(("line_item_usage_start_date",
                       f"has line items whose line_item_usage_start_date is on or after the end of billing period {billing_period}",
                       f"{day} >= DATE '{end.date().isoformat()}'", raw_start))
        checks.append(("line_item_usage_start_date",
                       f"has usage or purchase line items whose line_item_usage_start_date is before billing period {billing_period} "
                       f"(only corrections of earlier periods may be: {', '.join(CORRECTION_TYPES)})",
                       f"{day} < DATE '{start.date().isoformat()}' AND coalesce({kind}, '') NOT IN {_in(CORRECTION_TYPES)}",
                       f"{raw_start} || ' (' || coalesce({kind}, '') || ')'"))
    return checks


def _raw_totals_select(layout: FileLayout, paths: list[str], billing_period: str | None = None) -> str:
    """Straight from the raw columns, none of the rollup's rules: currency, type, count, billed, unblended,
    and for every value check the number of lines that fail it and one sample (TRY_CAST: a bad value is
    reported by its check, with its column, not by a conversion error)."""
    def amount(raw: str) -> str:
        return f"TRY_CAST(NULLIF(trim({_q(raw)}), '') AS {MONEY_SQL})" if layout.kind == "csv" else f"TRY_CAST({_q(raw)} AS {MONEY_SQL})"
    unblended = amount(layout.columns["line_item_unblended_cost"])
    net = layout.columns.get("line_item_net_unblended_cost")
    billed = f"coalesce({amount(net)}, {unblended})" if net else unblended
    currency = _q(layout.columns["line_item_currency_code"])
    kind = _q(layout.columns["line_item_line_item_type"])
    start = _q(layout.columns["line_item_usage_start_date"])
    missing_start = f"{start} IS NULL OR trim({start}) = ''" if layout.kind == "csv" else f"{start} IS NULL"
    undated = f"count(*) FILTER (WHERE {missing_start})"
    checks = "".join(f", count(*) FILTER (WHERE {bad}) AS check_{i}, min({sample}) FILTER (WHERE {bad}) AS sample_{i}"
                     for i, (_, _, bad, sample) in enumerate(_value_checks(layout, paths, billing_period)))
    return (f"SELECT CAST({currency} AS VARCHAR) AS currency, CAST({kind} AS VARCHAR) AS kind, count(*) AS n, "
            f"sum({billed}) AS billed, sum({unblended}) AS unblended, {undated} AS undated{checks} "
            f"FROM {_source(layout, paths)} GROUP BY ALL")


def _failed_check(connection: duckdb.DuckDBPyConnection, layout: FileLayout, files: list[CurFile],
                  billing_period: str | None, rows: list[tuple]) -> CurFileError | None:
    """The first value check some line fails, named by file (each file re-read alone if the group has several)."""
    checks = _value_checks(layout, [str(f.path) for f in files], billing_period)
    for i, (column, problem, _, _) in enumerate(checks):
        if not any(row[6 + 2 * i] for row in rows):
            continue
        for file in files:
            found = rows if len(files) == 1 else connection.execute(_raw_totals_select(layout, [str(file.path)], billing_period)).fetchall()
            samples = [row[7 + 2 * i] for row in found if row[6 + 2 * i]]
            if samples:
                count = sum(row[6 + 2 * i] for row in found)
                return CurFileError(file.key, f"{problem}: {count} line(s), e.g. {min(samples)!r}", column=column,
                                    sample=str(min(samples)))
    return None


def raw_totals(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]],
               billing_period: str | None = None) -> RawTotals:
    """The reconciliation figures; a file with a value no rule may guess at (see `_value_checks`) fails here."""
    totals = RawTotals()
    for layout, files in groups:
        rows = connection.execute(_raw_totals_select(layout, [str(f.path) for f in files], billing_period)).fetchall()
        bad = _failed_check(connection, layout, files, billing_period, rows)
        if bad is not None:
            raise bad
        where = files[0].key if len(files) == 1 else f"{len(files)} files like {files[0].key}"
        for currency, kind, count, billed, unblended, undated, *_ in rows:
            if currency is None or currency == "":
                raise CurFileError(where, "has line items without line_item_currency_code", column="line_item_currency_code")
            if undated:
                raise CurFileError(where, f"has {undated} line items without line_item_usage_start_date",
                                   column="line_item_usage_start_date")
            kind = kind or "(empty)"
            totals.line_items += count
            totals.by_type[kind] = totals.by_type.get(kind, 0) + count
            sum_by_currency([(currency, billed)], totals.billed)
            sum_by_currency([(currency, unblended)], totals.unblended)
    return totals


def locate_bad_file(connection: duckdb.DuckDBPyConnection, groups: list[tuple[FileLayout, list[CurFile]]]) -> CurFileError | None:
    """After a query failed: read each file alone to name the one that is corrupt or holds a bad value."""
    for layout, files in groups:
        for file in files:
            try:
                connection.execute(f"SELECT count(*), sum(unblended), min(usage_day) FROM ({canonical_select(layout, [str(file.path)])})").fetchall()
            except duckdb.Error as exc:
                message = str(exc).replace(str(file.path), file.key).splitlines()[0]
                return CurFileError(file.key, f"is corrupt, truncated or holds a value that is not a number/date ({message})")
    return None


def describe_layouts(groups: list[tuple[FileLayout, list[CurFile]]]) -> dict[str, Any]:
    """What the metadata shows about schema drift: optional columns absent (NULL) and columns ignored."""
    wanted = set(OPTIONAL_TEXT) | set(OPTIONAL_MONEY) | set(OPTIONAL_QUANTITY)
    absent: set[str] = set()
    ignored: set[str] = set()
    for layout, _ in groups:
        present = set(layout.columns)
        if layout.product_map:
            present.add("product_product_name")
        absent |= wanted - present - {"product_region", "product_region_code", "product_product_name"}
        if not ({"product_region", "product_region_code"} & present):
            absent.add("product_region_code")
        ignored |= set(layout.ignored)
    return {"optional_columns_absent": sorted(absent), "columns_ignored": len(ignored),
            "formats": sorted({layout.kind for layout, _ in groups})}
