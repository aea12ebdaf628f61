"""The SQL we send to BigQuery for the FOCUS export (or a FOCUS view), built from the table's own schema.

The table's columns are mapped onto cost_daily by the shared FOCUS reader's rules (focus.layout_from_types:
versions, renames, mandatory columns, type fit); only the columns cost_daily has a place for are read.
Identifiers (project, dataset, table, columns) are checked against strict patterns right before they are
written into SQL; days, invoice month and cut-off time go in as query parameters. Both queries aggregate
in BigQuery, so raw rows never leave it:

- the state query: per charge day (UTC) and currency, MAX(x_ExportTime), the row count and SUM(BilledCost),
  the figures the partition reconciles to;
- the rows query: per charge day and every other selected column (Tags as a JSON object with sorted keys),
  the sums of the Cost and Quantity columns, rows exported after the state query (`x_ExportTime > @as_of`)
  left out, so rows and totals describe the same moment.

The invoice month is `DATE(BillingPeriodStart) = @period_start` (UTC date), which holds whether the table
starts periods at UTC midnight or, as Google's invoices run, at US Pacific midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from finops_pipeline import focus
from finops_pipeline.defs.gcp.query import checked_dataset, checked_project, refuse_identifier
from finops_pipeline.schema import COLUMNS

if TYPE_CHECKING:  # google-cloud-bigquery is imported where parameters are made: loading the definitions stays cheap
    from google.cloud import bigquery

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,1023}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
EXPORT_TIME = "x_ExportTime"
PREFIX = "gcp_billing_export_focus_"
# Google's x_ columns with a place in cost_daily under another name.
ALIASES = {"x_CostType": "x_SourceChargeType"}
# Columns the shared reader computes itself: not read (ChargePeriodStart is read as the day, Tags as JSON).
_SKIPPED = set(focus.COMPUTED) - {"ChargePeriodStart", "Tags"}
_MEASURES = {c.name for c in COLUMNS if str(c.type).startswith("decimal") and c.name.endswith(("Cost", "Quantity"))}
_TIMESTAMPS = ("ChargePeriodStart", "BillingPeriodStart", EXPORT_TIME)


def default_table(billing_account_id: str) -> str:
    return PREFIX + billing_account_id.replace("-", "_").upper()


def checked_table(value: str) -> str:
    if not isinstance(value, str) or not _TABLE.fullmatch(value):
        raise refuse_identifier("table name", str(value), "letters, digits and underscores")
    return value


def _column(name: str) -> str:
    if not _COLUMN.fullmatch(name):
        raise refuse_identifier("column name", name, "letters, digits and underscores")
    return f"`{name}`"


def duckdb_type(field: Any) -> str:
    """A BigQuery SchemaField as the DuckDB type the shared reader's rules speak."""
    kind = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}.get(field.field_type, field.field_type)
    if kind == "RECORD":
        text = "STRUCT(" + ", ".join(f"{f.name} {duckdb_type(f)}" for f in field.fields) + ")"
    else:
        text = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "FLOAT": "DOUBLE", "NUMERIC": "DECIMAL(38,9)", "BIGNUMERIC": "DECIMAL(38,9)",
                "BOOLEAN": "BOOLEAN", "TIMESTAMP": "TIMESTAMP WITH TIME ZONE", "DATETIME": "TIMESTAMP", "DATE": "DATE",
                "JSON": "VARCHAR", "BYTES": "BLOB"}.get(kind, "VARCHAR")
    return text + "[]" if field.mode == "REPEATED" else text


@dataclass(frozen=True)
class FocusTable:
    project: str
    dataset: str
    table: str
    view: bool
    bigquery_types: dict[str, str]  # column (as cost_daily's rules see it, ALIASES applied) -> BigQuery type, "[]" if REPEATED
    duckdb_types: dict[str, str]  # the same columns as DuckDB types (what focus.layout_from_types reads)
    sources: dict[str, str]  # such a column -> the table's own column

    @property
    def id(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    def sql_name(self) -> str:
        """`project.dataset.table`, each part validated again here, where it enters SQL."""
        return f"`{checked_project(self.project)}.{checked_dataset(self.dataset)}.{checked_table(self.table)}`"

    def source(self, name: str) -> str:
        return _column(self.sources.get(name, name))


def _filter(table: FocusTable, start: str) -> str:
    # A constant range on ChargePeriodStart prunes a table partitioned on it; IN UNNEST narrows to the exact days.
    return (f"{start} >= TIMESTAMP(@first_day) AND {start} < TIMESTAMP(DATE_ADD(@last_day, INTERVAL 1 DAY))\n"
            f"    AND DATE({start}) IN UNNEST(@days)\n"
            f"    AND DATE({table.source('BillingPeriodStart')}) = @period_start")


def state_sql(table: FocusTable, layout: focus.Layout) -> str:
    start = table.source(layout.columns["ChargePeriodStart"])
    return f"""
SELECT DATE({start}) AS charge_day, IFNULL({table.source(layout.columns['BillingCurrency'])}, '') AS currency,
       MAX({table.source(EXPORT_TIME)}) AS last_export_time, COUNT(*) AS export_rows,
       IFNULL(SUM(CAST({table.source(layout.columns['BilledCost'])} AS NUMERIC)), 0) AS billed
FROM {table.sql_name()}
WHERE {_filter(table, start)}
GROUP BY charge_day, currency
ORDER BY charge_day, currency
""".strip()


STATE_COLUMNS = {"charge_day": "DATE", "currency": "STRING", "last_export_time": "TIMESTAMP", "export_rows": "INTEGER", "billed": "NUMERIC"}
STATE_NOT_NULL = tuple(STATE_COLUMNS)


def _tags_json(column: str) -> str:
    """Tags (a repeated key/value record) as a JSON object with sorted keys, NULL when empty; of a key given
    twice (a resource label and an inherited project label), the smallest value."""
    return (f"(SELECT CONCAT('{{', STRING_AGG(CONCAT(TO_JSON_STRING(tag_key), ':', TO_JSON_STRING(tag_value)), ',' ORDER BY tag_key), '}}')\n"
            f"     FROM (SELECT tag.key AS tag_key, MIN(tag.value) AS tag_value FROM UNNEST({column}) AS tag\n"
            f"           WHERE tag.key IS NOT NULL GROUP BY tag.key))")


def rows_sql(table: FocusTable, layout: focus.Layout) -> tuple[str, dict[str, str]]:
    """The aggregating query, and the columns (with BigQuery types) its answer must have."""
    selected, grouped, measures = [], [], []
    answer: dict[str, str] = {}
    start = layout.columns["ChargePeriodStart"]
    for name, raw in layout.columns.items():
        if name in _SKIPPED or name == "ChargePeriodStart":
            continue
        kind = table.bigquery_types[raw]
        column = table.source(raw)
        alias = _column(raw)
        if name in _MEASURES:
            selected.append(f"CAST({column} AS NUMERIC) AS {alias}")
            measures.append(f"SUM({alias}) AS {alias}")
            answer[raw] = "NUMERIC"
            continue
        if name == "Tags" and focus.is_tag_list(table.duckdb_types[raw]):
            expression, answer[raw] = _tags_json(column), "STRING"
        elif name == "BillingCurrency":
            expression, answer[raw] = f"IFNULL({column}, '')", "STRING"
        elif kind.endswith("[]") or kind in ("RECORD", "JSON"):
            expression, answer[raw] = f"TO_JSON_STRING({column})", "STRING"
        else:
            expression, answer[raw] = column, kind
        selected.append(f"{expression} AS {alias}")
        grouped.append(alias)
    day = _column(start)
    sql = f"""
WITH lines AS (
  SELECT DATE({table.source(start)}) AS charge_day,
    {(',' + chr(10) + '    ').join(selected)}
  FROM {table.sql_name()}
  WHERE {_filter(table, table.source(start))}
    AND {table.source(EXPORT_TIME)} <= @as_of
)
SELECT charge_day AS {day}, {', '.join(grouped)}, {', '.join(measures)}
FROM lines
GROUP BY charge_day, {', '.join(grouped)}
""".strip()
    return sql, {start: "DATE", **answer}


def day_parameters(days: list[date], billing_period: str) -> list[bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter]:
    from google.cloud import bigquery

    return [
        bigquery.ScalarQueryParameter("first_day", "DATE", min(days)),
        bigquery.ScalarQueryParameter("last_day", "DATE", max(days)),
        bigquery.ArrayQueryParameter("days", "DATE", sorted(days)),
        bigquery.ScalarQueryParameter("period_start", "DATE", date.fromisoformat(f"{billing_period}-01")),
    ]


def as_of_parameter(as_of: datetime) -> bigquery.ScalarQueryParameter:
    from google.cloud import bigquery

    return bigquery.ScalarQueryParameter("as_of", "TIMESTAMP", as_of)
