"""The unified daily cost table, `cost_daily`, in FOCUS 1.2 column names.

Every provider normalizes into exactly this Arrow schema, so the lake, the catalog, the marts and
the checks only ever know one shape. Money is DECIMAL(38, 10) end to end: providers send amounts as
decimal strings (or, for BigQuery, FLOAT64 that we convert through its shortest repr), and floats
never touch a total.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

MONEY_PRECISION = 38
MONEY_SCALE = 10
MONEY = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
QUANTITY = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
UTC_TS = pa.timestamp("us", tz="UTC")
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)

# FOCUS 1.2 ChargeCategory values.
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")

# FOCUS 1.2 ServiceCategory allowed values.
SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("BilledCost", MONEY, False, "What the invoice charges for the row (FOCUS BilledCost)."),
    Column("EffectiveCost", MONEY, False, "Cost after amortizing commitments (Savings Plans, RIs) and credits where the source gives them."),
    Column("ListCost", MONEY, False, "Public list price cost; the billed cost where the source has no list price (see the data dictionary)."),
    Column("ContractedCost", MONEY, False, "Cost at negotiated rates before commitment discounts; the billed cost where the source has no such figure."),
    Column("BillingCurrency", pa.string(), False, "ISO 4217 currency of every cost column of the row. Never summed across."),
    Column("BillingPeriodStart", UTC_TS, False, "First instant of the invoice month (UTC)."),
    Column("BillingPeriodEnd", UTC_TS, False, "First instant of the next invoice month (exclusive)."),
    Column("ChargePeriodStart", UTC_TS, False, "The day the cost was incurred, 00:00Z."),
    Column("ChargePeriodEnd", UTC_TS, False, "The next day, 00:00Z (exclusive)."),
    Column("ChargeCategory", pa.string(), False, "Usage, Purchase, Tax, Credit or Adjustment."),
    Column("ChargeClass", pa.string(), True, "'Correction' when the row corrects an earlier invoiced period, else NULL."),
    Column("ChargeDescription", pa.string(), True, "The source's description of the charge."),
    Column("BillingAccountId", pa.string(), False,
           "The account that pays the invoice (AWS payer, GCP billing account, Azure subscription's billing scope, DO team)."),
    Column("BillingAccountName", pa.string(), True, "Display name of the billing account (from finops.yaml when the source has none)."),
    Column("SubAccountId", pa.string(), True, "AWS linked account, GCP project, Azure subscription, DO project."),
    Column("SubAccountName", pa.string(), True, "Display name of the sub account."),
    Column("InvoiceIssuerName", pa.string(), False, "Who issues the invoice."),
    Column("ProviderName", pa.string(), False, "Who provides the resources (AWS, Google Cloud, Microsoft, DigitalOcean)."),
    Column("PublisherName", pa.string(), False, "Who publishes the service (the provider for first-party services)."),
    Column("ServiceName", pa.string(), False, "The provider's service name."),
    Column("ServiceCategory", pa.string(), False, "One of FOCUS's fixed ServiceCategory values."),
    Column("RegionId", pa.string(), True, "Provider region code, NULL when not regional or unknown."),
    Column("RegionName", pa.string(), True, "Region display name."),
    Column("ResourceId", pa.string(), True, "Resource identifier where the source gives one."),
    Column("ResourceName", pa.string(), True, "Resource display name."),
    Column("SkuId", pa.string(), True, "Provider SKU."),
    Column("PricingQuantity", QUANTITY, True, "Quantity in pricing units."),
    Column("PricingUnit", pa.string(), True, "Unit of PricingQuantity."),
    Column("ConsumedQuantity", QUANTITY, True, "Quantity consumed."),
    Column("ConsumedUnit", pa.string(), True, "Unit of ConsumedQuantity."),
    Column("Tags", pa.string(), True, "FOCUS Tags: a JSON object of key/value strings, NULL when none."),
    Column("x_Provider", pa.string(), False, "Our provider key: aws, gcp, azure, digitalocean."),
    Column("x_Source", pa.string(), False, "Our source kind: cost_explorer, cur, bigquery_export, cost_management, billing."),
    Column("x_AccountKey", pa.string(), False, "The account's key in finops.yaml."),
    Column("x_Estimated", pa.bool_(), False, "True while the provider marks the figure as estimated (it may still change)."),
    Column("x_SourceChargeType", pa.string(), True, "The source's own charge type (CUR line item type, GCP cost_type, ...), kept verbatim."),
    Column("x_CurrencyConversionRate", QUANTITY, True, "Provider's rate from USD to BillingCurrency when the source gives it (GCP)."),
    Column("x_SourceUpdatedAt", UTC_TS, True, "When the source last changed the row (GCP export_time, CUR manifest time)."),
    Column("x_IngestedAt", UTC_TS, False, "When this pipeline wrote the row."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
MONEY_COLUMNS: tuple[str, ...] = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
COST_DAILY_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS])



class SchemaError(ValueError):
    """A row or table that does not fit `cost_daily`."""


def to_decimal(value: Any, *, field: str = "amount") -> Decimal:
    """Parse a provider amount exactly. Floats go through repr, so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise SchemaError(f"{field}: {value!r} is not a number") from exc
    else:
        raise SchemaError(f"{field}: {value!r} is not a number")
    if not result.is_finite():
        raise SchemaError(f"{field}: {value!r} is not a finite number")
    return result


def quantize_money(value: Decimal) -> Decimal:
    """Fit an amount into DECIMAL(38, 10). Raises if that would change it by more than rounding."""
    quantized = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    if len(quantized.as_tuple().digits) > MONEY_PRECISION:
        raise SchemaError(f"amount {value} does not fit DECIMAL({MONEY_PRECISION},{MONEY_SCALE})")
    return quantized


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A FOCUS charge period for one day: [D 00:00Z, D+1 00:00Z)."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def month_bounds(billing_period: str) -> tuple[datetime, datetime]:
    """'2026-11' -> (2026-11-01T00:00Z, 2026-12-01T00:00Z)."""
    start = datetime.strptime(billing_period, "%Y-%m").replace(tzinfo=timezone.utc)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def tags_json(tags: Mapping[str, Any] | None) -> str | None:
    """FOCUS Tags: a JSON object with string values, NULL (not '{}') when there are none."""
    if not tags:
        return None
    clean = {str(k): ("" if v is None else str(v)) for k, v in tags.items() if str(k)}
    return json.dumps(clean, sort_keys=True, separators=(",", ":")) if clean else None


# Service name fragments to FOCUS ServiceCategory. Matched case-insensitively, first hit wins, so
# the specific fragments come before the broad ones.
_SERVICE_CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("tax", "Other"),
    # Google Cloud services whose names the broad fragments below miss or misplace.
    ("dataproc", "Analytics"),
    ("looker", "Analytics"),
    ("bigtable", "Databases"),
    ("alloydb", "Databases"),
    ("memorystore", "Databases"),
    ("datastore", "Databases"),
    ("app engine", "Compute"),
    ("gemini", "AI and Machine Learning"),
    ("artifact registry", "Developer Tools"),
    ("cloud armor", "Security"),
    ("cloud nat", "Networking"),
    ("filestore", "Storage"),
    ("cloud composer", "Integration"),
    ("sagemaker", "AI and Machine Learning"),
    ("bedrock", "AI and Machine Learning"),
    ("vertex", "AI and Machine Learning"),
    ("machine learning", "AI and Machine Learning"),
    ("openai", "AI and Machine Learning"),
    ("cognitive", "AI and Machine Learning"),
    ("gradient", "AI and Machine Learning"),
    ("genai", "AI and Machine Learning"),
    ("bigquery", "Analytics"),
    ("athena", "Analytics"),
    ("redshift", "Analytics"),
    ("glue", "Analytics"),
    ("kinesis", "Analytics"),
    ("emr", "Analytics"),
    ("dataflow", "Analytics"),
    ("synapse", "Analytics"),
    ("data factory", "Analytics"),
    ("databricks", "Analytics"),
    ("rds", "Databases"),
    ("relational database", "Databases"),
    ("dynamodb", "Databases"),
    ("aurora", "Databases"),
    ("elasticache", "Databases"),
    ("cloud sql", "Databases"),
    ("spanner", "Databases"),
    ("firestore", "Databases"),
    ("cosmos", "Databases"),
    ("sql database", "Databases"),
    ("database", "Databases"),
    ("redis", "Databases"),
    ("cloudfront", "Networking"),
    ("route 53", "Networking"),
    ("vpc", "Networking"),
    ("virtual private cloud", "Networking"),
    ("load balanc", "Networking"),
    ("data transfer", "Networking"),
    ("networking", "Networking"),
    ("network", "Networking"),
    ("cdn", "Networking"),
    ("dns", "Networking"),
    ("bandwidth", "Networking"),
    ("floating ip", "Networking"),
    ("reserved ip", "Networking"),
    ("simple storage service", "Storage"),
    ("s3", "Storage"),
    ("cloud storage", "Storage"),
    ("storage", "Storage"),
    ("backup", "Storage"),
    ("snapshot", "Storage"),
    ("volume", "Storage"),
    ("spaces", "Storage"),
    ("elastic block", "Storage"),
    ("efs", "Storage"),
    ("glacier", "Storage"),
    ("cloudwatch", "Management and Governance"),
    ("cloudtrail", "Management and Governance"),
    ("config", "Management and Governance"),
    ("monitor", "Management and Governance"),
    ("uptime", "Management and Governance"),
    ("logging", "Management and Governance"),
    ("support", "Management and Governance"),
    ("key management", "Security"),
    ("kms", "Security"),
    ("guardduty", "Security"),
    ("security", "Security"),
    ("waf", "Security"),
    ("secret", "Security"),
    ("defender", "Security"),
    ("identity", "Identity"),
    ("cognito", "Identity"),
    ("entra", "Identity"),
    ("sqs", "Integration"),
    ("sns", "Integration"),
    ("simple queue", "Integration"),
    ("simple notification", "Integration"),
    ("pub/sub", "Integration"),
    ("event", "Integration"),
    ("service bus", "Integration"),
    ("api gateway", "Web"),
    ("app platform", "Web"),
    ("app service", "Web"),
    ("amplify", "Web"),
    ("functions", "Compute"),
    ("lambda", "Compute"),
    ("ec2", "Compute"),
    ("elastic compute", "Compute"),
    ("compute", "Compute"),
    ("kubernetes", "Compute"),
    ("container", "Compute"),
    ("droplet", "Compute"),
    ("virtual machine", "Compute"),
    ("cloud run", "Compute"),
    ("fargate", "Compute"),
    ("ecs", "Compute"),
    ("eks", "Compute"),
    ("gke", "Compute"),
    ("codebuild", "Developer Tools"),
    ("codepipeline", "Developer Tools"),
    ("devops", "Developer Tools"),
    ("cloud build", "Developer Tools"),
    ("iot", "Internet of Things"),
    ("media", "Media"),
    ("migration", "Migration"),
)


def service_category(service_name: str | None) -> str:
    """Map a provider's service name to FOCUS's fixed ServiceCategory list ('Other' if unknown)."""
    if not service_name:
        return "Other"
    lowered = service_name.lower()
    for fragment, category in _SERVICE_CATEGORY_RULES:
        if fragment in lowered:
            return category
    return "Other"


def service_category_sql(expression: str) -> str:
    """The same mapping as `service_category`, as a SQL CASE over `expression` (for DuckDB queries)."""
    lowered = f"lower(coalesce({expression}, ''))"
    branches = " ".join(
        f"WHEN contains({lowered}, '{fragment}') THEN '{category}'" for fragment, category in _SERVICE_CATEGORY_RULES
    )
    return f"(CASE {branches} ELSE 'Other' END)"


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a `cost_daily` table from row dicts, filling absent nullable columns with NULL.

    Money columns accept Decimal/str/int; they are quantized to the table's scale and a value that
    would not fit raises, so a bad amount fails loudly instead of becoming a float.
    """
    columns: dict[str, list[Any]] = {name: [] for name in COLUMN_NAMES}
    for index, row in enumerate(rows):
        unknown = set(row) - set(columns)
        if unknown:
            raise SchemaError(f"row {index}: unknown column(s) {sorted(unknown)}")
        for column in COLUMNS:
            value = row.get(column.name)
            if value is None:
                if not column.nullable:
                    raise SchemaError(f"row {index}: {column.name} is required but missing")
            elif column.type == MONEY or column.type == QUANTITY:
                value = quantize_money(to_decimal(value, field=column.name))
            elif column.name == "ChargeCategory" and value not in CHARGE_CATEGORIES:
                raise SchemaError(f"row {index}: ChargeCategory {value!r} is not one of {CHARGE_CATEGORIES}")
            elif column.name == "ServiceCategory" and value not in SERVICE_CATEGORIES:
                raise SchemaError(f"row {index}: ServiceCategory {value!r} is not a FOCUS value")
            elif isinstance(value, str) and value == "" and column.nullable:
                value = None  # FOCUS: unknown is NULL, never ''
            columns[column.name].append(value)
    return pa.table(columns, schema=COST_DAILY_SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """Cast a table built elsewhere (DuckDB, pandas) to the exact `cost_daily` schema.

    Missing nullable columns become NULL and extra columns are an error, so drift is caught here,
    once, instead of in each provider.
    """
    extra = set(table.column_names) - set(COLUMN_NAMES)
    if extra:
        raise SchemaError(f"unexpected column(s) {sorted(extra)} for cost_daily")
    arrays = []
    for column in COLUMNS:
        if column.name in table.column_names:
            array = table.column(column.name)
            if array.type != column.type:
                try:
                    array = array.cast(column.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(f"{column.name}: cannot cast {array.type} to {column.type}: {exc}") from exc
        elif column.nullable:
            array = pa.nulls(table.num_rows, type=column.type)
        else:
            raise SchemaError(f"required column {column.name} is missing")
        if not column.nullable and array.null_count:
            raise SchemaError(f"{column.name} has {array.null_count} NULL value(s); it is required")
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=COST_DAILY_SCHEMA)


def totals_by_currency(table: pa.Table, column: str = "BilledCost") -> dict[str, Decimal]:
    """Exact per-currency totals of a money column (the reconciliation figure)."""
    totals: dict[str, Decimal] = {}
    currencies = table.column("BillingCurrency").to_pylist()
    amounts = table.column(column).to_pylist()
    for currency, amount in zip(currencies, amounts):
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals
