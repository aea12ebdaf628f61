"""Full materializations through Dagster against the stand-in: lake, catalog, checks, failure isolation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from finops_pipeline import catalog
from finops_pipeline.lake import PartitionKey, read_partition, read_partition_totals
from finops_pipeline_tests.conftest import by_account, check_results, run_checks, run_events, run_refresh, statuses, write_config
from finops_sandbox.azure import seed_subscription

from .conftest import SECRET

PERIOD = "2026-10"
CONNECTED = "2026-11-01T00:00:00Z"
AT_47H = "2026-11-02T23:00:00Z"
AT_49H = "2026-11-03T01:00:00Z"
SOURCE_ID = "azure_cost_management"


def expected(records, attribute):
    totals = {}
    for r in records:
        amount = getattr(r, attribute)
        if amount is not None and r.day.strftime("%Y-%m") == PERIOD:
            totals[r.currency] = totals.get(r.currency, Decimal(0)) + amount
    return totals


def catalog_totals(data_dir, account_key):
    _, rows = catalog.query(
        data_dir,
        "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM cost_daily WHERE x_AccountKey = ? GROUP BY 1",
        [account_key],
    )
    return {c: b for c, b, _ in rows}, {c: e for c, _, e in rows}


def check(account: str, name: str = "billing_data_within_48h") -> tuple[str, str]:
    return (f"{SOURCE_ID}/{account}", name)


def test_refresh_writes_the_month_and_the_48_hour_rule_holds(azure, tenant, tmp_path):
    prod = tenant.subscription()
    eu = tenant.subscription()
    empty = tenant.subscription()
    prod_records = seed_subscription(azure, prod, date(2026, 9, 15), 60)
    eu_records = seed_subscription(azure, eu, date(2026, 10, 1), 31, currency="EUR")
    config = write_config(tmp_path, [
        tenant.entry("prod", prod, CONNECTED), tenant.entry("eu", eu, CONNECTED), tenant.entry("empty", empty, CONNECTED),
    ])
    data_dir = tmp_path / "data"

    result = run_refresh(config, data_dir, PERIOD, now=AT_47H)
    assert result.ok

    # The lake partition, with the raw source totals it must reconcile to.
    key = PartitionKey("azure", "cost_management", "prod", PERIOD)
    assert key.path(data_dir).exists()
    assert read_partition_totals(key.path(data_dir)) == expected(prod_records, "cost")
    assert read_partition(data_dir, PartitionKey("azure", "cost_management", "empty", PERIOD)).num_rows == 0

    # The catalog, exactly the seeded money, currencies apart.
    billed, effective = catalog_totals(data_dir, "prod")
    assert billed == expected(prod_records, "cost") and effective == expected(prod_records, "amortized_cost")
    billed, effective = catalog_totals(data_dir, "eu")
    assert billed == expected(eu_records, "cost") == {"EUR": billed["EUR"]}
    _, rows = catalog.query(data_dir, "SELECT count(*) FROM cost_daily WHERE x_AccountKey = 'prod' AND ChargePeriodStart < '2026-10-01'")
    assert rows == [(0,)]

    details = by_account(result)["prod"].metadata["source_details"].data
    assert details["queries"] == 2 and details["qpu_consumed"] >= 2

    checks = check_results(run_checks(config, data_dir, now=AT_47H))
    assert all(checks[check(a, "reconciles_with_source")].passed for a in ("prod", "eu", "empty"))
    assert checks[check("empty")].passed  # 'empty' is still PENDING at 47 h

    later = run_checks(config, data_dir, now=AT_49H)
    checks = check_results(later)
    assert checks[check("prod", "reconciles_with_source")].passed
    no_data = checks[check("empty")]
    assert not no_data.passed
    assert no_data.severity.value == "ERROR"
    assert statuses(later, SOURCE_ID) == {"prod": "OK", "eu": "OK", "empty": "NO_DATA"}
    # The queries succeed with no rows: the role works, so the fix is about the subscription, not the role.
    assert "subscription_id" in no_data.metadata["fix"].value and "Cost Management Reader" not in no_data.metadata["fix"].value

    _, table = catalog.query(data_dir, "SELECT account_key, status FROM billing_connection_status WHERE provider = 'azure' ORDER BY 1")
    assert table == [("empty", "NO_DATA"), ("eu", "OK"), ("prod", "OK")]


def test_a_failing_subscription_keeps_its_last_data_and_never_stops_the_others(azure, tenant, tmp_path):
    prod = tenant.subscription()
    eu = tenant.subscription()
    seed_subscription(azure, prod, date(2026, 10, 1), 20)
    eu_records = seed_subscription(azure, eu, date(2026, 10, 1), 31, currency="EUR")
    config = write_config(tmp_path, [tenant.entry("prod", prod, CONNECTED), tenant.entry("eu", eu, CONNECTED)])
    data_dir = tmp_path / "data"
    run_refresh(config, data_dir, PERIOD, now=AT_47H)  # pull records carry the pinned clock: keep runs apart
    eu_before = read_partition(data_dir, PartitionKey("azure", "cost_management", "eu", PERIOD))

    # Later: prod has 11 more days; eu's role was moved to a resource group.
    more = seed_subscription(azure, prod, date(2026, 10, 21), 11, seed="more")
    azure.assign_reader(eu, tenant.client_id, "resourceGroup:rg-data")
    result = run_refresh(config, data_dir, PERIOD, now=AT_49H)
    assert not result.ok  # the run is red for eu; prod is still written
    assert by_account(result)["prod"].ok

    prod_records = [r for r in azure.subscriptions[prod].records]
    billed, _ = catalog_totals(data_dir, "prod")
    assert billed == expected(prod_records, "cost") and more
    assert read_partition(data_dir, PartitionKey("azure", "cost_management", "eu", PERIOD)).equals(eu_before)
    billed, _ = catalog_totals(data_dir, "eu")
    assert billed == expected(eu_records, "cost")

    eu_result = by_account(result)["eu"]
    assert eu_result.code == "azure.rbac_access_denied" and "Cost Management Reader" in eu_result.fix

    checks = check_results(run_checks(config, data_dir, now=AT_49H))
    within_48h = checks[check("eu")]
    assert not within_48h.passed
    assert within_48h.severity.value == "WARN"  # its data is there, its latest pull failed
    assert within_48h.metadata["status"].value == "ERROR"
    assert "not a resource group" in within_48h.metadata["fix"].value
    assert checks[check("prod")].passed and checks[check("eu", "reconciles_with_source")].passed

    _, rows = catalog.query(data_dir, "SELECT status, error_code, fix FROM billing_connection_status WHERE account_key = 'eu'")
    assert rows[0][0] == "ERROR" and rows[0][1] == "azure.rbac_access_denied" and "Cost Management Reader" in rows[0][2]

    # No secret anywhere: lake, state, catalog, marts, run logs.
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in run_events(result)


def test_bad_secret_is_diagnosed_in_the_status_table(azure, tenant, tmp_path, monkeypatch):
    prod = tenant.subscription()
    config = write_config(tmp_path, [tenant.entry("prod", prod, CONNECTED)])
    data_dir = tmp_path / "data"
    wrong = "wrong-secret-value-123456"
    monkeypatch.setenv("AZ_TEST_CLIENT_SECRET", wrong)
    result = run_refresh(config, data_dir, PERIOD, now=AT_47H)
    _, rows = catalog.query(data_dir, "SELECT status, error_code, last_error FROM billing_connection_status WHERE account_key = 'prod'")
    assert rows[0][:2] == ("ERROR", "azure.bad_client_secret")
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert wrong.encode() not in path.read_bytes(), path
    assert wrong not in run_events(result)
