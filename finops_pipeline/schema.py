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

from finops_pipeline.money import MONEY_CONTEXT as _MONEY_CONTEXT
from finops_pipeline.money import MONEY_PRECISION, MONEY_SCALE, sum_by_currency

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


# FOCUS requirement levels (FOCUS 1.2 specification, "Columns"). Mandatory means the column is always
# present; whether a value may be NULL is `nullable` (ChargeClass, PricingQuantity ... are Mandatory
# columns whose value is NULL where the spec allows it).
MANDATORY, CONDITIONAL, RECOMMENDED, OPTIONAL = "Mandatory", "Conditional", "Recommended", "Optional"

# FOCUS 1.2 allowed values of the enumerated columns (rows_to_table and the conformance tests check them).
CHARGE_CLASSES = ("Correction",)
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")
COMMITMENT_DISCOUNT_CATEGORIES = ("Spend", "Usage")
COMMITMENT_DISCOUNT_STATUSES = ("Used", "Unused")
COMMITMENT_DISCOUNT_TYPES_AWS = ("Reservation", "Savings Plan")  # provider-defined in FOCUS; the values we write
CAPACITY_RESERVATION_STATUSES = ("Used", "Unused")
# Set together or not at all (FOCUS: CommitmentDiscountId set <=> Type, Category set).
COMMITMENT_COLUMNS = ("CommitmentDiscountId", "CommitmentDiscountType", "CommitmentDiscountCategory")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    doc: str
    # FOCUS requirement level (Mandatory, Conditional, Recommended, Optional); None for our x_ columns.
    requirement: str | None = None
    # FOCUS data type (String, Decimal, Date/Time, JSON); None for our x_ columns.
    focus_type: str | None = None
    # The FOCUS version that introduced the column, for the ones beyond 1.2 (ServiceProviderName: 1.3).
    focus_version: str | None = None


def _f(name: str, type_: pa.DataType, nullable: bool, requirement: str, doc: str, focus_type: str | None = None,
       version: str = "1.2") -> Column:
    if focus_type is None:
        focus_type = "Decimal" if pa.types.is_decimal(type_) else "Date/Time" if pa.types.is_timestamp(type_) else "String"
    return Column(name, type_, nullable, doc, requirement, focus_type, version)


S = pa.string()
M, C, R = MANDATORY, CONDITIONAL, RECOMMENDED

COLUMNS: tuple[Column, ...] = (
    _f("BilledCost", MONEY, False, M, "What the invoice charges for the row (FOCUS BilledCost)."),
    _f("EffectiveCost", MONEY, False, M, "Cost after amortizing commitments (Savings Plans, RIs) and credits where the source gives them; "
       "0 on purchases that cover future charges."),
    _f("ListCost", MONEY, False, M, "Public list price cost; the billed cost where the source has no list price (see the data dictionary)."),
    _f("ContractedCost", MONEY, False, M, "Cost at negotiated rates before commitment discounts; the billed cost where the source has no such figure."),
    _f("BillingCurrency", S, False, M, "ISO 4217 currency of every cost column of the row. Never summed across."),
    _f("BillingPeriodStart", UTC_TS, False, M, "First instant of the invoice month (UTC)."),
    _f("BillingPeriodEnd", UTC_TS, False, M, "First instant of the next invoice month (exclusive)."),
    _f("ChargePeriodStart", UTC_TS, False, M, "The day the cost was incurred, 00:00Z."),
    _f("ChargePeriodEnd", UTC_TS, False, M, "The next day, 00:00Z (exclusive)."),
    _f("ChargeCategory", S, False, M, "Usage, Purchase, Tax, Credit or Adjustment."),
    _f("ChargeClass", S, True, M, "'Correction' when the row corrects an earlier invoiced period, else NULL."),
    _f("ChargeDescription", S, True, M, "The source's description of the charge."),
    _f("BillingAccountId", S, False, M,
       "The account that pays the invoice (AWS payer, GCP billing account, Azure subscription's billing scope, DO team)."),
    _f("BillingAccountName", S, True, M, "Display name of the billing account (from finops.yaml when the source has none)."),
    _f("SubAccountId", S, True, C, "AWS linked account, GCP project, Azure subscription, DO project."),
    _f("SubAccountName", S, True, C, "Display name of the sub account; its id when no name is known (never NULL when SubAccountId is set)."),
    _f("InvoiceIssuerName", S, False, M, "Who issues the invoice."),
    _f("ProviderName", S, False, M, "Who provides the resources (AWS, Google Cloud, Microsoft, DigitalOcean). Deprecated in FOCUS 1.3."),
    _f("PublisherName", S, False, M, "Who publishes the service (the provider for first-party services). Deprecated in FOCUS 1.3."),
    _f("ServiceName", S, False, M, "The provider's service name."),
    _f("ServiceCategory", S, False, M, "One of FOCUS's fixed ServiceCategory values."),
    _f("RegionId", S, True, C, "Provider region code, NULL when not regional or unknown."),
    _f("RegionName", S, True, C, "Region display name; set exactly when RegionId is."),
    _f("ResourceId", S, True, C, "Resource identifier where the source gives one."),
    _f("ResourceName", S, True, C, "Resource display name."),
    _f("SkuId", S, True, C, "Provider SKU; NULL on Tax rows."),
    _f("PricingQuantity", QUANTITY, True, M, "Quantity in pricing units."),
    _f("PricingUnit", S, True, M, "Unit of PricingQuantity in FOCUS UnitFormat where the source's unit is known (Hrs -> Hours, GB-Mo -> "
                                  "GB-Months, 1 GB/Month -> GB-Months, gibibyte month -> GiB-Months; the quantity unchanged); NULL exactly "
                                  "when PricingQuantity is."),
    _f("ConsumedQuantity", QUANTITY, True, C, "Quantity consumed."),
    _f("ConsumedUnit", S, True, C, "Unit of ConsumedQuantity, in FOCUS UnitFormat as PricingUnit."),
    _f("Tags", S, True, C, "FOCUS Tags: a JSON object of key/value strings, NULL when none.", focus_type="JSON"),
    # FOCUS 1.2 columns beyond the first 31, alphabetical.
    _f("AvailabilityZone", S, True, R, "Provider availability zone (us-east-1a, europe-west1-b)."),
    _f("BillingAccountType", S, True, C, "Provider label for the billing account kind (AWS: Payer Account, GCP: Billing Account ...)."),
    _f("CapacityReservationId", S, True, C, "Capacity reservation the row relates to."),
    _f("CapacityReservationStatus", S, True, C, "Used or Unused capacity reservation (set iff CapacityReservationId on usage rows)."),
    _f("ChargeFrequency", S, True, R, "One-Time, Recurring or Usage-Based."),
    _f("CommitmentDiscountCategory", S, True, C, "Spend (savings plans, spend-based CUDs) or Usage (reservations, resource CUDs)."),
    _f("CommitmentDiscountId", S, True, C, "Commitment (reservation, savings plan, CUD) the row relates to."),
    _f("CommitmentDiscountName", S, True, C, "Display name of the commitment."),
    _f("CommitmentDiscountQuantity", QUANTITY, True, C, "Commitment quantity used or unused by the row, in CommitmentDiscountUnit."),
    _f("CommitmentDiscountStatus", S, True, C, "Used or Unused, on usage rows of a commitment."),
    _f("CommitmentDiscountType", S, True, C, "Provider label of the commitment (Reservation, Savings Plan, Committed Use Discount)."),
    _f("CommitmentDiscountUnit", S, True, C, "Unit of CommitmentDiscountQuantity, in FOCUS UnitFormat as PricingUnit."),
    _f("ContractedUnitPrice", MONEY, True, C, "Negotiated unit price of the SKU (before commitment discounts)."),
    _f("InvoiceId", S, True, R, "The invoice the row is billed on, once invoiced."),
    _f("ListUnitPrice", MONEY, True, C, "Public list unit price of the SKU."),
    _f("PricingCategory", S, True, C, "Standard, Dynamic, Committed or Other; NULL where nothing is priced (tax, credits)."),
    _f("PricingCurrency", S, True, C, "Currency of the provider's price list, when the source says so (FocusCost 1.0's x_PricingCurrency)."),
    _f("PricingCurrencyContractedUnitPrice", MONEY, True, C, "ContractedUnitPrice in PricingCurrency."),
    _f("PricingCurrencyEffectiveCost", MONEY, True, C, "EffectiveCost in PricingCurrency."),
    _f("PricingCurrencyListUnitPrice", MONEY, True, C, "ListUnitPrice in PricingCurrency."),
    _f("ResourceType", S, True, C, "Kind of resource (Virtual Machine, Bucket, ...), where derivable."),
    _f("ServiceSubcategory", S, True, R, "One of FOCUS's ServiceSubcategory values, under the row's ServiceCategory; "
                                         "`Other (<ServiceCategory>)` where no listed one fits."),
    _f("SkuMeter", S, True, C, "What the SKU meters (AWS usage type, GCP SKU description)."),
    _f("SkuPriceDetails", S, True, C, "JSON object of the SKU price's properties.", focus_type="JSON"),
    _f("SkuPriceId", S, True, C, "Provider id of the SKU's price (AWS rate code)."),
    _f("SubAccountType", S, True, C, "Provider label for the sub account kind (AWS: Linked Account, GCP: Project, ...)."),
    # FOCUS 1.3 (ProviderName and PublisherName stay until 1.4 removes them).
    _f("ServiceProviderName", S, False, M, "FOCUS 1.3: who offers the service (ProviderName's successor).", version="1.3"),
    _f("HostProviderName", S, True, C, "FOCUS 1.3: who hosts the resources (the cloud provider for first-party services).", version="1.3"),
    Column("x_Provider", S, False, "Our provider key: aws, gcp, azure, digitalocean."),
    Column("x_Source", S, False, "Our source kind: cost_explorer, cur, bigquery_export, cost_management, billing."),
    Column("x_AccountKey", S, False, "The account's key in finops.yaml."),
    Column("x_Estimated", pa.bool_(), False, "True while the provider marks the figure as estimated (it may still change)."),
    Column("x_SourceChargeType", S, True, "The source's own charge type (CUR line item type, GCP cost_type, ...), kept verbatim."),
    Column("x_CurrencyConversionRate", QUANTITY, True, "Provider's rate from USD to BillingCurrency when the source gives it (GCP)."),
    Column("x_SourceUpdatedAt", UTC_TS, True, "When the source last changed the row (GCP export_time, CUR manifest time)."),
    Column("x_IngestedAt", UTC_TS, False, "When this pipeline wrote the row."),
)
FOCUS_12_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.focus_version == "1.2")
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "ChargeCategory": CHARGE_CATEGORIES,
    "ChargeClass": CHARGE_CLASSES,
    "ChargeFrequency": CHARGE_FREQUENCIES,
    "PricingCategory": PRICING_CATEGORIES,
    "CommitmentDiscountCategory": COMMITMENT_DISCOUNT_CATEGORIES,
    "CommitmentDiscountStatus": COMMITMENT_DISCOUNT_STATUSES,
    "CapacityReservationStatus": CAPACITY_RESERVATION_STATUSES,
    "ServiceCategory": SERVICE_CATEGORIES,
}

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
MONEY_COLUMNS: tuple[str, ...] = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
COST_DAILY_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS])



# Required columns `focus_rules` derives when a source leaves them out.
_DERIVED = ("ServiceProviderName",)


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
    try:  # the default context's 28 digits would refuse amounts the column holds; quantize traps past 38
        quantized = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN, context=_MONEY_CONTEXT)
    except InvalidOperation:
        raise SchemaError(f"amount {value} does not fit DECIMAL({MONEY_PRECISION},{MONEY_SCALE})") from None
    if not quantized.is_finite() or len(quantized.as_tuple().digits) > MONEY_PRECISION:
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
    ("bigquery", "Databases"),  # its ServiceSubcategory Data Warehouses is a Databases subcategory in FOCUS 1.2
    ("athena", "Analytics"),
    ("redshift", "Databases"),  # Data Warehouses, a Databases subcategory in FOCUS 1.2 (as BigQuery)
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
    ("elastic file", "Storage"),
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


# Service name fragments to FOCUS 1.2 ServiceSubcategory values, a deliberately small list: first hit
# wins; a service none matches has NULL (FOCUS recommends the column, it does not require it).
_SERVICE_SUBCATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("tax", ""),
    ("lambda", "Serverless Compute"),
    ("cloud functions", "Serverless Compute"),
    ("cloud run", "Serverless Compute"),
    ("functions", "Serverless Compute"),
    ("kubernetes", "Containers"),
    ("container", "Containers"),
    ("fargate", "Containers"),
    ("elastic compute cloud", "Virtual Machines"),
    ("compute engine", "Virtual Machines"),
    ("virtual machine", "Virtual Machines"),
    ("droplet", "Virtual Machines"),
    ("simple storage service", "Object Storage"),
    ("cloud storage", "Object Storage"),
    ("spaces", "Object Storage"),
    ("elastic block", "Block Storage"),
    ("volume", "Block Storage"),
    ("elastic file", "File Storage"),
    ("filestore", "File Storage"),
    ("elasticache", "Caching"),
    ("memorystore", "Caching"),
    ("redis", "Caching"),
    ("dynamodb", "NoSQL Databases"),
    ("firestore", "NoSQL Databases"),
    ("cosmos", "NoSQL Databases"),
    ("bigtable", "NoSQL Databases"),
    ("relational database", "Relational Databases"),
    ("cloud sql", "Relational Databases"),
    ("sql database", "Relational Databases"),
    ("spanner", "Relational Databases"),
    ("redshift", "Data Warehouses"),
    ("bigquery", "Data Warehouses"),
    ("cloudfront", "Content Delivery"),
    ("cdn", "Content Delivery"),
    ("cloudwatch", "Observability"),
    ("monitor", "Observability"),
    ("logging", "Observability"),
)


# FOCUS 1.2's ServiceSubcategory values, each under its one parent ServiceCategory (ServiceSubcategory-C-004-M).
_SUBCATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AI and Machine Learning", ("AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing")),
    ("Analytics", ("Analytics Platforms", "Business Intelligence", "Data Processing", "Search", "Streaming Analytics")),
    ("Business Applications", ("Productivity and Collaboration",)),
    ("Compute", ("Containers", "End User Computing", "Quantum Compute", "Serverless Compute", "Virtual Machines")),
    ("Databases", ("Caching", "Data Warehouses", "Ledger Databases", "NoSQL Databases", "Relational Databases", "Time Series Databases")),
    ("Developer Tools", ("Developer Platforms", "Continuous Integration and Deployment", "Development Environments", "Source Code Management",
                         "Quality Assurance")),
    ("Identity", ("Identity and Access Management",)),
    ("Integration", ("API Management", "Messaging", "Workflow Orchestration")),
    ("Internet of Things", ("IoT Analytics", "IoT Platforms")),
    ("Management and Governance", ("Architecture", "Compliance", "Cost Management", "Data Governance", "Disaster Recovery", "Endpoint Management",
                                   "Observability", "Support")),
    ("Media", ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality")),
    ("Migration", ("Data Migration", "Resource Migration")),
    ("Mobile", ()),
    ("Multicloud", ("Multicloud Integration",)),
    ("Networking", ("Application Networking", "Content Delivery", "Network Connectivity", "Network Infrastructure", "Network Routing", "Network Security")),
    ("Security", ("Secret Management", "Security Posture Management", "Threat Detection and Response")),
    ("Storage", ("Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms")),
    ("Web", ("Application Platforms",)),
    ("Other", ()),
)
# Every category also has "Other (<category>)" for a service none of its subcategories fits.
SERVICE_SUBCATEGORY_PARENTS: dict[str, str] = {
    **{sub: category for category, subs in _SUBCATEGORIES for sub in subs},
    **{f"Other ({category})": category for category, _ in _SUBCATEGORIES},
}


def subcategory_parent_sql(expression: str) -> str:
    """The FOCUS 1.2 parent ServiceCategory of the ServiceSubcategory `expression` (NULL for a value FOCUS does not list)."""
    return lookup_sql(expression, SERVICE_SUBCATEGORY_PARENTS)


def sql_literal(text: object) -> str:
    """`text` as a SQL string literal (quotes doubled): the one place the SQL we build quotes a value."""
    return "'" + str(text).replace("'", "''") + "'"


def lookup_sql(expression: str, table: Mapping[str, str], otherwise: str = "NULL") -> str:
    """A Python lookup table as a DuckDB CASE over `expression`: `table[value]`, else the SQL `otherwise`
    (pass `expression` itself to keep values the table does not list)."""
    branches = " ".join(f"WHEN {sql_literal(key)} THEN {sql_literal(value)}" for key, value in table.items())
    return f"(CASE {expression} {branches} ELSE {otherwise} END)"


# Units as the sources write them -> FOCUS 1.2 UnitFormat (PricingUnit, ConsumedUnit, CommitmentDiscountUnit SHOULD
# follow it). Only spellings whose meaning is certain are rewritten, and only the notation changes, never the quantity:
# AWS's "Hrs" and "GB-Mo" count hours and GB-months, GCP's pricing units are its price list's ("hour", "gibibyte
# month"), Azure's unitOfMeasure "1 Hour" / "1 GB/Month" is the unit its quantity counts in. Keys compare lowercased.
_UNIT_NAMES: dict[str, str] = {
    # AWS (CUR pricing_unit, Data Exports FOCUS)
    "hrs": "Hours", "hr": "Hours", "gb-mo": "GB-Months", "gb-month": "GB-Months", "lambda-gb-second": "GB-Seconds",
    # Google Cloud (pricing_unit, usage.unit)
    "hour": "Hours", "hours": "Hours", "second": "Seconds", "seconds": "Seconds", "month": "Months", "day": "Days",
    "gibibyte": "GiB", "tebibyte": "TiB", "mebibyte": "MiB", "gibibyte month": "GiB-Months", "tebibyte month": "TiB-Months",
    "gibibyte hour": "GiB-Hours", "gibibyte day": "GiB-Days",
    # Azure (unitOfMeasure, FocusCost PricingUnit/ConsumedUnit)
    "1 hour": "Hours", "1 day": "Days", "1 month": "Months", "1 gb": "GB", "1 gb/month": "GB-Months",
}
# AWS compound units: "<unit>-Hrs" counts <unit>-hours, "<unit>-Mo" <unit>-months (ReadCapacityUnit-Hrs, IOPS-Mo).
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (("-Hrs", "-Hours"), ("-Mo", "-Months"))


def focus_unit(unit: str | None) -> str | None:
    """A source's unit in FOCUS UnitFormat where its meaning is known (`_UNIT_NAMES`), else as the source wrote it."""
    if unit is None:
        return None
    known = _UNIT_NAMES.get(unit.strip().lower())
    if known is not None:
        return known
    for suffix, replacement in _UNIT_SUFFIXES:
        if unit.endswith(suffix):
            return unit[: -len(suffix)] + replacement
    return unit


def focus_unit_sql(expression: str) -> str:
    """`focus_unit` as a SQL expression over `expression` (DuckDB)."""
    other = expression
    for suffix, replacement in _UNIT_SUFFIXES:
        other = f"regexp_replace({other}, {sql_literal(suffix + '$')}, {sql_literal(replacement)})"
    return lookup_sql(f"lower(trim({expression}))", _UNIT_NAMES, other)


UNIT_COLUMNS = ("PricingUnit", "ConsumedUnit", "CommitmentDiscountUnit")


def service_subcategory(service_name: str | None) -> str | None:
    """FOCUS ServiceSubcategory of a service name, NULL when the small mapping has none."""
    lowered = (service_name or "").lower()
    for fragment, subcategory in _SERVICE_SUBCATEGORY_RULES:
        if fragment in lowered:
            return subcategory or None
    return None


def service_subcategory_sql(expression: str) -> str:
    """`service_subcategory` as a SQL CASE over `expression`."""
    lowered = f"lower(coalesce({expression}, ''))"
    branches = " ".join(
        f"WHEN contains({lowered}, '{fragment}') THEN {repr(sub) if sub else 'NULL'}" for fragment, sub in _SERVICE_SUBCATEGORY_RULES
    )
    return f"(CASE {branches} ELSE NULL END)"


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a `cost_daily` table from row dicts, filling absent nullable columns with NULL.

    Money columns accept Decimal/str/int; they are quantized to the table's scale and a value that
    would not fit raises, so a bad amount fails loudly instead of becoming a float.
    """
    columns: dict[str, list[Any]] = {name: [] for name in COLUMN_NAMES}
    for index, row in enumerate(rows):
        if not _NAME_SET.issuperset(row):
            raise SchemaError(f"row {index}: unknown column(s) {sorted(set(row) - _NAME_SET)}")
        for name, required, money, allowed, nullable in _ROW_PLAN:
            value = row.get(name)
            if value is None:
                if required:
                    raise SchemaError(f"row {index}: {name} is required but missing")
            elif money:
                value = quantize_money(to_decimal(value, field=name))
            elif allowed is not None and value not in allowed:
                raise SchemaError(f"row {index}: {name} {value!r} is not one of FOCUS's {allowed}")
            elif nullable and value == "":
                value = None  # FOCUS: unknown is NULL, never ''
            columns[name].append(value)
    return focus_rules(pa.table(columns, schema=COST_DAILY_SCHEMA))


# What rows_to_table checks per column, worked out once: comparing Arrow types per cell costs more than the rest.
_NAME_SET = frozenset(COLUMN_NAMES)
_ROW_PLAN = tuple(
    (c.name, not c.nullable and c.name not in _DERIVED, c.type == MONEY or c.type == QUANTITY, ALLOWED_VALUES.get(c.name), c.nullable)
    for c in COLUMNS
)


def focus_rules(table: pa.Table) -> pa.Table:
    """The FOCUS relationships every source shares, applied once here (and in SQL by the CUR rollup):

    - ServiceProviderName (FOCUS 1.3) is ProviderName, HostProviderName too (first-party services), when unset;
    - SubAccountName is the SubAccountId when the source knows no name (FOCUS: not NULL when the id is set);
    - PricingUnit is NULL when PricingQuantity is (FOCUS PricingUnit-C);
    - PricingUnit, ConsumedUnit and CommitmentDiscountUnit in FOCUS UnitFormat where the source's unit is known (`focus_unit`);
    - SkuId (and SkuPriceId, SkuMeter) are NULL on Tax rows (FOCUS: SkuId NULL when ChargeCategory is Tax);
    - ServiceSubcategory is "Other (<ServiceCategory>)" where the mapping has none (FOCUS: never NULL);
    - the PricingCurrency* amounts are the billing ones where PricingCurrency is the BillingCurrency.
    """
    import pyarrow.compute as pc

    def put(name: str, array) -> None:
        nonlocal table
        table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), array.cast(table.schema.field(name).type))

    provider = table.column("ProviderName")
    for name in ("ServiceProviderName", "HostProviderName"):
        if table.column(name).null_count:
            put(name, pc.coalesce(table.column(name), provider))
    sub_id, sub_name = table.column("SubAccountId"), table.column("SubAccountName")
    if sub_name.null_count:
        put("SubAccountName", pc.coalesce(sub_name, sub_id))
    unit = table.column("PricingUnit")
    if unit.null_count != table.num_rows:
        put("PricingUnit", pc.if_else(pc.is_null(table.column("PricingQuantity")), pa.scalar(None, pa.string()), unit))
    for name in UNIT_COLUMNS:  # FOCUS UnitFormat, once per distinct unit
        column = table.column(name)
        if column.null_count != table.num_rows:
            encoded = pc.dictionary_encode(column.combine_chunks())
            units = encoded.dictionary.to_pylist()
            fixed = [focus_unit(u) for u in units]
            if fixed != units:
                put(name, pa.DictionaryArray.from_arrays(encoded.indices, pa.array(fixed, pa.string())).cast(pa.string()))
    subcategory = table.column("ServiceSubcategory")
    if subcategory.null_count:  # FOCUS: never NULL; what the mapping does not know is "Other (<category>)"
        other = pc.binary_join_element_wise("Other (", table.column("ServiceCategory"), ")", "")
        put("ServiceSubcategory", pc.coalesce(subcategory, other))
    # Where the source prices in the billing currency, the PricingCurrency* columns are the billing ones.
    same = pc.fill_null(pc.equal(table.column("PricingCurrency"), table.column("BillingCurrency")), False)
    if pc.any(same).as_py():
        for target, origin in (("PricingCurrencyEffectiveCost", "EffectiveCost"), ("PricingCurrencyListUnitPrice", "ListUnitPrice"),
                               ("PricingCurrencyContractedUnitPrice", "ContractedUnitPrice")):
            if table.column(target).null_count:
                put(target, pc.coalesce(table.column(target), pc.if_else(same, table.column(origin), pa.scalar(None, table.column(origin).type))))
    tax = pc.fill_null(pc.equal(table.column("ChargeCategory"), "Tax"), False)
    if pc.any(tax).as_py():
        for name in ("SkuId", "SkuPriceId", "SkuMeter"):
            if table.column(name).null_count != table.num_rows:
                put(name, pc.if_else(tax, pa.scalar(None, pa.string()), table.column(name)))
    return table


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
        elif column.nullable or column.name in _DERIVED:
            array = pa.nulls(table.num_rows, type=column.type)
        else:
            raise SchemaError(f"required column {column.name} is missing")
        arrays.append(array)
    table = focus_rules(pa.Table.from_arrays(arrays, schema=COST_DAILY_SCHEMA))
    for column in COLUMNS:
        if not column.nullable and table.column(column.name).null_count:
            raise SchemaError(f"{column.name} has {table.column(column.name).null_count} NULL value(s); it is required")
    return table


def totals_by_currency(table: pa.Table, column: str = "BilledCost") -> dict[str, Decimal]:
    """Exact per-currency totals of a money column (the reconciliation figure)."""
    return sum_by_currency(zip(table.column("BillingCurrency").to_pylist(), table.column(column).to_pylist()))
