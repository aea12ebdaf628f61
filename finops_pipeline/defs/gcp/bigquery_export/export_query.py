"""The SQL we send to BigQuery for the billing export, and the identifiers that go into it.

Identifiers (project, dataset, table) cannot be query parameters in BigQuery, so each one is checked
against a strict pattern right before it is written into SQL; everything else (days, invoice month,
cut-off time) goes in as a query parameter. Both queries aggregate in BigQuery, so raw export rows
never leave it, and both filter `_PARTITIONTIME` on a constant range so BigQuery prunes partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from finops_pipeline.defs.gcp.query import checked_dataset, checked_project, refuse_identifier

if TYPE_CHECKING:  # google-cloud-bigquery is imported where parameters are made: loading the definitions stays cheap
    from google.cloud import bigquery

_TABLE = re.compile(r"gcp_billing_export(_resource)?_v1_[0-9A-F]{6}_[0-9A-F]{6}_[0-9A-F]{6}")

STANDARD_PREFIX = "gcp_billing_export_v1_"
DETAILED_PREFIX = "gcp_billing_export_resource_v1_"


def checked_table(value: str) -> str:
    if not isinstance(value, str) or not _TABLE.fullmatch(value):
        raise refuse_identifier("export table name", str(value), "gcp_billing_export[_resource]_v1_<BILLING ACCOUNT>")
    return value


@dataclass(frozen=True)
class ExportTable:
    project: str
    dataset: str
    table: str

    @property
    def detailed(self) -> bool:
        return self.table.startswith(DETAILED_PREFIX)

    @property
    def kind(self) -> str:
        return "detailed" if self.detailed else "standard"

    def sql_name(self) -> str:
        """`project.dataset.table`, each part validated again here, where it enters SQL."""
        return f"`{checked_project(self.project)}.{checked_dataset(self.dataset)}.{checked_table(self.table)}`"


def choose_export_table(table_names: list[str], billing_account_id: str) -> str | None:
    """The detailed table when present (it has resources), else the standard one; None if neither."""
    suffix = billing_account_id.replace("-", "_").upper()
    for prefix in (DETAILED_PREFIX, STANDARD_PREFIX):
        if prefix + suffix in table_names:
            return prefix + suffix
    return None


def _partition_filter() -> str:
    # A constant range on _PARTITIONTIME prunes partitions; the IN UNNEST narrows to the exact days.
    return (
        "_PARTITIONTIME >= TIMESTAMP(@first_day) AND _PARTITIONTIME < TIMESTAMP(DATE_ADD(@last_day, INTERVAL 1 DAY))\n"
        "    AND DATE(_PARTITIONTIME) IN UNNEST(@days)\n"
        "    AND invoice.month = @invoice_month"
    )


def day_state_sql(table: ExportTable) -> str:
    """Per partition day and currency: the newest export_time, and the raw cost and credits sums.

    The sums are the source totals the unified rows must reconcile to; they are computed here, in a
    query independent of the grouping the rows come from.
    """
    return f"""
WITH exported AS (
  SELECT DATE(_PARTITIONTIME) AS partition_day, currency, export_time, cost, credits
  FROM {table.sql_name()}
  WHERE {_partition_filter()}
),
charges AS (
  SELECT partition_day, currency, MAX(export_time) AS last_export_time, COUNT(*) AS export_rows,
         SUM(CAST(cost AS NUMERIC)) AS cost
  FROM exported GROUP BY partition_day, currency
),
credit_sums AS (
  SELECT partition_day, currency, SUM(CAST(credit.amount AS NUMERIC)) AS credits
  FROM exported, UNNEST(credits) AS credit GROUP BY partition_day, currency
)
SELECT charges.partition_day, charges.currency, charges.last_export_time, charges.export_rows, charges.cost,
       IFNULL(credit_sums.credits, 0) AS credits
FROM charges LEFT JOIN credit_sums
  ON charges.partition_day = credit_sums.partition_day AND charges.currency = credit_sums.currency
ORDER BY partition_day, currency
""".strip()


def _grain(detailed: bool) -> list[tuple[str, str]]:
    """(output name, export expression) of the grouping columns."""
    grain = [
        ("partition_day", "DATE(_PARTITIONTIME)"),
        ("usage_day", "DATE(usage_start_time)"),
        ("project_id", "project.id"),
        ("project_name", "project.name"),
        ("service_id", "service.id"),
        ("service_name", "service.description"),
        ("sku_id", "sku.id"),
        ("sku_description", "sku.description"),
        ("region", "location.region"),
        ("zone", "location.zone"),
        ("currency", "currency"),
        ("cost_type", "cost_type"),
        ("labels_json", "TO_JSON_STRING(labels)"),
        ("usage_unit", "usage.unit"),
        ("pricing_unit", "usage.pricing_unit"),
        # The SKU's prices of the row's tier (exported since 2025-07-15; NULL before): grouped on, so a
        # line has one list and one contracted price. As text, so NUMERIC stays exact.
        ("price_unit", "price.unit"),
        ("price_unit_quantity", "CAST(price.pricing_unit_quantity AS STRING)"),
        ("price_tier_start", "CAST(price.tier_start_amount AS STRING)"),
        ("list_price", "CAST(price.list_price AS STRING)"),
        ("contracted_price", "CAST(price.effective_price_default AS STRING)"),
    ]
    if detailed:
        grain += [("resource_name", "resource.name"), ("resource_global_name", "resource.global_name")]
    return grain


def charges_sql(table: ExportTable) -> str:
    """The day's rows aggregated to the unified grain: one 'charge' line per group with its cost, and one
    'credit' line per group and credit type/name/id with the credits' sum, so credits stay apart from cost
    (a committed use discount's credit id names the commitment's credit: CommitmentDiscountId).

    `list_amount` is the export's cost_at_list (the cost at list prices) and `contracted_amount` its
    cost_at_effective_price_default (at the account's negotiated prices, before commitment pricing), each
    the cost itself where a row predates the column: ListCost and ContractedCost.

    `export_time <= @as_of` keeps rows that arrived after the state query out, so the rows and the
    totals describe the same moment of the export.
    """
    grain = _grain(table.detailed)
    names = ", ".join(name for name, _ in grain)
    selected = ",\n    ".join(f"{expression} AS {name}" for name, expression in grain)
    return f"""
WITH exported AS (
  SELECT
    {selected},
    cost, cost_at_list, cost_at_effective_price_default, credits, usage.amount AS usage_amount, usage.amount_in_pricing_units AS pricing_amount,
    currency_conversion_rate, export_time
  FROM {table.sql_name()}
  WHERE {_partition_filter()}
    AND export_time <= @as_of
)
SELECT 'charge' AS line, {names},
  CAST(NULL AS STRING) AS credit_type, CAST(NULL AS STRING) AS credit_name, CAST(NULL AS STRING) AS credit_id,
  SUM(CAST(cost AS NUMERIC)) AS amount,
  SUM(CAST(IFNULL(cost_at_list, cost) AS NUMERIC)) AS list_amount,
  SUM(CAST(IFNULL(cost_at_effective_price_default, cost) AS NUMERIC)) AS contracted_amount,
  SUM(CAST(usage_amount AS NUMERIC)) AS usage_amount,
  SUM(CAST(pricing_amount AS NUMERIC)) AS pricing_amount,
  MAX(currency_conversion_rate) AS currency_conversion_rate,
  MAX(export_time) AS last_export_time
FROM exported
GROUP BY {names}
UNION ALL
SELECT 'credit' AS line, {names},
  credit.type AS credit_type, credit.name AS credit_name, credit.id AS credit_id,
  SUM(CAST(credit.amount AS NUMERIC)) AS amount,
  CAST(NULL AS NUMERIC) AS list_amount,
  CAST(NULL AS NUMERIC) AS contracted_amount,
  CAST(NULL AS NUMERIC) AS usage_amount,
  CAST(NULL AS NUMERIC) AS pricing_amount,
  MAX(currency_conversion_rate) AS currency_conversion_rate,
  MAX(export_time) AS last_export_time
FROM exported, UNNEST(credits) AS credit
GROUP BY {names}, credit_type, credit_name, credit_id
""".strip()


# The columns each query answers with, and their BigQuery types (as the REST schema names them).
# An answer is only read when it has every one of them with that type: a result that lacks a column
# or types it otherwise is not the answer to this query.
DAY_STATE_COLUMNS: dict[str, str] = {
    "partition_day": "DATE", "currency": "STRING", "last_export_time": "TIMESTAMP", "export_rows": "INTEGER",
    "cost": "NUMERIC", "credits": "NUMERIC",
}
DAY_STATE_NOT_NULL = ("partition_day", "currency", "last_export_time", "export_rows", "cost", "credits")
CHARGES_NOT_NULL = ("line", "partition_day", "usage_day", "currency", "amount")


def charges_columns(table: ExportTable) -> dict[str, str]:
    columns = {"line": "STRING"}
    columns.update({name: "DATE" if name in ("partition_day", "usage_day") else "STRING" for name, _ in _grain(table.detailed)})
    columns.update({
        "credit_type": "STRING", "credit_name": "STRING", "credit_id": "STRING", "amount": "NUMERIC",
        "list_amount": "NUMERIC", "contracted_amount": "NUMERIC", "usage_amount": "NUMERIC", "pricing_amount": "NUMERIC",
        "currency_conversion_rate": "FLOAT", "last_export_time": "TIMESTAMP",
    })
    return columns


def day_parameters(days: list[date], invoice_month: str) -> list[bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter]:
    """Query parameters for a set of partition days of one invoice month ('2026-11' -> '202611')."""
    from google.cloud import bigquery

    return [
        bigquery.ScalarQueryParameter("first_day", "DATE", min(days)),
        bigquery.ScalarQueryParameter("last_day", "DATE", max(days)),
        bigquery.ArrayQueryParameter("days", "DATE", sorted(days)),
        bigquery.ScalarQueryParameter("invoice_month", "STRING", invoice_month.replace("-", "")),
    ]


def as_of_parameter(as_of: datetime) -> bigquery.ScalarQueryParameter:
    from google.cloud import bigquery

    return bigquery.ScalarQueryParameter("as_of", "TIMESTAMP", as_of)
