"""The lake is readable as is by other engines: the hive layout and the Parquet types read back through
pyarrow's dataset API exactly as the lake's own reader gives them, for partitions from both writers
(pyarrow's for the API sources, DuckDB's COPY for the file exports), and every Parquet type is one
Athena and BigQuery accept. docs/external_engines.md's DDL is checked against the schema, so it
cannot drift from the files."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.aws.focus.pull import pull_focus
from finops_pipeline.lake import PartitionKey, cost_daily_root, list_partitions, read_partition, write_partition
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline.schema import COST_DAILY_SCHEMA, MONEY_PRECISION, MONEY_SCALE, rows_to_table, tags_json, totals_by_currency
from finops_pipeline.sources import all_sources
from finops_sandbox import cur as sandbox_cur
from finops_sandbox import focus as sandbox_focus

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "external_engines.md"
PARTITION_KEYS = ("provider", "source", "account", "billing_period")
HIVE = ds.partitioning(pa.schema([(name, pa.string()) for name in PARTITION_KEYS]), flavor="hive")
# What an engine's table declares (the DDL below): every column nullable, the path keys as strings.
# (The two writers differ in which columns they mark REQUIRED; engines read both as nullable.)
ENGINE_SCHEMA = pa.schema([field.with_nullable(True) for field in COST_DAILY_SCHEMA] + [pa.field(name, pa.string()) for name in PARTITION_KEYS])


def athena_type(data_type: pa.DataType) -> str:
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_boolean(data_type):
        return "boolean"
    assert pa.types.is_string(data_type), data_type
    return "string"


def bigquery_type(data_type: pa.DataType) -> str:
    if pa.types.is_decimal(data_type):
        # NUMERIC holds 29 integer and 9 fractional digits; BIGNUMERIC 38 and 38.
        return "NUMERIC" if data_type.scale <= 9 and data_type.precision - data_type.scale <= 29 else "BIGNUMERIC"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMP"
    if pa.types.is_boolean(data_type):
        return "BOOL"
    return "STRING"


def sql_block(title: str) -> str:
    """The ```sql block under the doc's heading `title`."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1]
    return re.search(r"```sql\n(.*?)```", section, re.S)[1]


def columns_of(ddl: str, pattern: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in re.finditer(pattern, ddl, re.M)]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Two months from the AWS FOCUS pull (DuckDB writes them) and one month written by the lake's
    pyarrow writer, in euros, for an account whose key looks like a number."""
    data_dir = tmp_path / "data"
    exports = tmp_path / "exports"
    account = parse_config({"accounts": [{
        "key": "focus-main", "provider": "aws", "source": "focus", "name": "FOCUS", "connected_at": "2026-08-01T00:00:00Z",
        "account_id": sandbox_focus.PAYER, "prefix": "exports", "export_name": "focus-export", "local_dir": str(exports)}]},
        Path("finops.yaml")).accounts[0]
    for period in ("2026-09", "2026-10"):
        sandbox_focus.deliver(sandbox_cur.LocalBucket(exports), "bucket", "exports", "focus-export", period, sandbox_focus.rows(period, days=3))
        [outcome] = refresh_accounts(data_dir, [account], period, pull_focus, lambda: datetime(2026, 11, 5, tzinfo=timezone.utc), [])
        assert outcome.ok, outcome.diagnosis

    start, end = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)
    rows = [{
        "BilledCost": Decimal("123456789012345678.0123456789"), "EffectiveCost": "0.0000000001", "ListCost": "-5.5",
        "ContractedCost": "12.5", "BillingCurrency": "EUR", "BillingPeriodStart": start, "BillingPeriodEnd": end,
        "ChargePeriodStart": datetime(2026, 10, day, tzinfo=timezone.utc), "ChargePeriodEnd": datetime(2026, 10, day + 1, tzinfo=timezone.utc),
        "ChargeCategory": "Usage", "BillingAccountId": "0042", "InvoiceIssuerName": "DigitalOcean", "ProviderName": "DigitalOcean",
        "PublisherName": "DigitalOcean", "ServiceName": "Droplets", "ServiceCategory": "Compute", "PricingQuantity": "730.25",
        "PricingUnit": "Hours", "Tags": tags_json({"team": "data", "cost-center": "ü 42"}) if day % 2 else None,
        "x_Provider": "digitalocean", "x_Source": "billing", "x_AccountKey": "0042", "x_Estimated": day == 3,
        "x_SourceUpdatedAt": datetime(2026, 10, day, 7, 8, 9, 123456, tzinfo=timezone.utc),
        "x_IngestedAt": datetime(2026, 11, 2, 3, 4, 5, 654321, tzinfo=timezone.utc),
    } for day in (1, 2, 3)]
    table = rows_to_table(rows)
    write_partition(data_dir, PartitionKey("digitalocean", "billing", "0042", "2026-10"), table, totals_by_currency(table))
    return data_dir


def lake_reader_table(data_dir: Path) -> pa.Table:
    """What the lake's own reader gives, with each file's partition keys as columns (as an engine shows them)."""
    tables = []
    for key, _ in list_partitions(data_dir):
        table = read_partition(data_dir, key)
        for name in PARTITION_KEYS:
            table = table.append_column(name, pa.array([getattr(key, name)] * table.num_rows, pa.string()))
        tables.append(table.cast(ENGINE_SCHEMA))
    return pa.concat_tables(tables)


def test_the_hive_layout_reads_back_identically_through_pyarrow_datasets(lake: Path) -> None:
    dataset = ds.dataset(cost_daily_root(lake), format="parquet", partitioning=HIVE, schema=ENGINE_SCHEMA)
    assert len(dataset.files) == 3  # one file per (provider, source, account, billing period), no stray temporaries
    engine = dataset.to_table()
    ours = lake_reader_table(lake)

    order = [(name, "ascending") for name in (*PARTITION_KEYS, "ChargePeriodStart", "SubAccountId", "ServiceName", "RegionId",
                                               "ResourceId", "BilledCost", "ChargeCategory")]
    assert engine.schema == ours.schema == ENGINE_SCHEMA
    assert engine.sort_by(order).equals(ours.sort_by(order))
    assert engine.num_rows == ours.num_rows > 3

    # The file schema is the lake's: exact decimals, UTC instants to the microsecond, strings, JSON tags.
    for field in COST_DAILY_SCHEMA:
        assert engine.schema.field(field.name).type == field.type, field.name
    euro = engine.filter(ds.field("account") == "0042").sort_by("ChargePeriodStart").to_pylist()
    assert euro[0]["BilledCost"] == Decimal("123456789012345678.0123456789")  # 18 integer + 10 fractional digits
    assert euro[1]["EffectiveCost"] == Decimal("1E-10")
    assert euro[0]["x_SourceUpdatedAt"] == datetime(2026, 10, 1, 7, 8, 9, 123456, tzinfo=timezone.utc)
    assert json.loads(euro[0]["Tags"]) == {"team": "data", "cost-center": "ü 42"} and euro[1]["Tags"] is None
    assert {row["provider"] for row in euro} == {"digitalocean"} and euro[0]["x_AccountKey"] == "0042"

    # Why the DDL declares the partition keys STRING: left to infer them, an engine reads account=0042 as the integer 42.
    only = [str(PartitionKey("digitalocean", "billing", "0042", "2026-10").path(lake))]
    inferred = ds.dataset(only, format="parquet", partitioning="hive", partition_base_dir=str(cost_daily_root(lake))).to_table(columns=["account"])
    assert pa.types.is_integer(inferred.schema.field("account").type) and inferred.column("account").to_pylist() == [42, 42, 42]


def test_every_parquet_type_is_one_athena_and_bigquery_read(lake: Path) -> None:
    """The physical and logical types engines go by, in the files of both writers."""
    for _, path in list_partitions(lake):
        parquet = pq.ParquetFile(path).schema
        for index in range(len(parquet)):
            column = parquet.column(index)
            arrow = COST_DAILY_SCHEMA.field(column.name).type
            logical = str(column.logical_type)
            if pa.types.is_decimal(arrow):
                # Athena's decimal holds at most 38 digits; BigQuery reads DECIMAL(38,10) as BIGNUMERIC (76.76 digits, scale 38).
                assert logical == f"Decimal(precision={MONEY_PRECISION}, scale={MONEY_SCALE})" and MONEY_PRECISION <= 38
                assert column.physical_type in ("FIXED_LEN_BYTE_ARRAY", "BYTE_ARRAY")
            elif pa.types.is_timestamp(arrow):
                # isAdjustedToUTC=true: an instant. BigQuery maps it to TIMESTAMP (false would be DATETIME).
                assert column.physical_type == "INT64" and "isAdjustedToUTC=true" in logical and "timeUnit=microseconds" in logical
            elif pa.types.is_boolean(arrow):
                assert column.physical_type == "BOOLEAN"
            else:
                # Annotated UTF-8: without it BigQuery reads BYTE_ARRAY as BYTES.
                assert column.physical_type == "BYTE_ARRAY" and logical == "String", (path, column.name, logical)


def test_the_athena_ddl_matches_the_schema_and_the_layout() -> None:
    ddl = sql_block("Athena (AWS Glue Data Catalog)")
    columns = columns_of(ddl, r"^  `(\w+)` ([\w(),]+?),?$")
    assert columns == [(field.name, athena_type(field.type)) for field in COST_DAILY_SCHEMA]
    partitions = re.search(r"PARTITIONED BY \((.*?)\)\n", ddl, re.S)[1]
    assert re.findall(r"`(\w+)` string", partitions) == list(PARTITION_KEYS)
    assert "STORED AS PARQUET" in ddl and "/lake/cost_daily/'" in ddl

    projection = sql_block("Athena partition projection")
    values = dict(re.findall(r"'projection\.(\w+)\.values' = '([^']*)'", projection))
    assert set(values["provider"].split(",")) == {s.provider.key for s in all_sources()}
    assert set(values["source"].split(",")) == {s.name for s in all_sources()}
    template = re.search(r"'storage\.location\.template' = '([^']*)'", projection)[1]
    key = PartitionKey("${provider}", "${source}", "${account}", "${billing_period}")
    assert template.endswith(str(key.directory(Path("data")).relative_to(Path("data/lake"))) + "/")


def test_the_bigquery_ddl_matches_the_schema_and_the_layout() -> None:
    ddl = sql_block("BigQuery (external table with hive partitioning)")
    columns = columns_of(ddl, r"^  (\w+) (\w+),?$")
    schema_columns = [(field.name, bigquery_type(field.type)) for field in COST_DAILY_SCHEMA]
    assert columns[: len(schema_columns)] == schema_columns
    assert columns[len(schema_columns):] == [(name, "STRING") for name in PARTITION_KEYS]
    assert "WITH PARTITION COLUMNS" in ddl and "format = 'PARQUET'" in ddl
    assert "decimal_target_types = ['NUMERIC', 'BIGNUMERIC']" in ddl
    prefix = re.search(r"hive_partition_uri_prefix = '([^']*)'", ddl)[1]
    assert prefix.endswith("/lake/cost_daily") and f"uris = ['{prefix}/*.parquet']" in ddl  # never a writer's .tmp file
