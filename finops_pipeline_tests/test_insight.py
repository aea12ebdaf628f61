"""The insight tables on small hand-built lakes: exact Decimal figures, per currency, never summed across."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline import insight
from finops_pipeline.config import parse_config
from finops_pipeline.insight import (
    budget_status,
    cost_anomalies,
    cost_by_service,
    cost_by_tag,
    cost_forecast,
    detect_usage_anomalies,
    normalized_tags,
)
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table
from finops_pipeline_tests.test_schema import row

D = Decimal


def charge(day: date, amount: str, *, service: str = "Amazon EC2", currency: str = "USD", category: str = "Usage",
           tags: dict | None = None, account: str = "aws-a", billed: str | None = None, estimated: bool = False) -> dict:
    start, end = day_bounds(day)
    period_start, period_end = month_bounds(day.strftime("%Y-%m"))
    return row(
        BilledCost=billed or amount, EffectiveCost=amount, BillingCurrency=currency, ChargePeriodStart=start, ChargePeriodEnd=end,
        BillingPeriodStart=period_start, BillingPeriodEnd=period_end, x_AccountKey=account, ServiceName=service,
        ChargeCategory=category, Tags=json.dumps(tags) if tags else None, x_Estimated=estimated,
    )


def seed(data_dir: Path, rows: list[dict]) -> Path:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["x_AccountKey"], r["BillingPeriodStart"].strftime("%Y-%m")), []).append(r)
    for (account, period), items in groups.items():
        write_partition(data_dir, PartitionKey("aws", "cost_explorer", account, period), rows_to_table(items), {})
    return data_dir


def test_cost_by_service_per_day_and_billing_period_per_currency(tmp_path: Path) -> None:
    seed(tmp_path, [
        charge(date(2026, 10, 31), "1.5", billed="2"), charge(date(2026, 11, 1), "3.25"), charge(date(2026, 11, 2), "1"),
        charge(date(2026, 11, 2), "7", service="Amazon S3"), charge(date(2026, 11, 2), "4", currency="EUR"),
    ])
    table = cost_by_service(tmp_path).to_pylist()
    periods = {(r["billing_period"], r["service_name"], r["currency"]): (r["billed_cost"], r["effective_cost"])
               for r in table if r["grain"] == "billing_period"}
    assert periods == {
        ("2026-10", "Amazon EC2", "USD"): (D("2"), D("1.5")),
        ("2026-11", "Amazon EC2", "USD"): (D("4.25"), D("4.25")),
        ("2026-11", "Amazon S3", "USD"): (D("7"), D("7")),
        ("2026-11", "Amazon EC2", "EUR"): (D("4"), D("4")),
    }
    daily = {(r["period_start"], r["service_name"], r["currency"]): r["effective_cost"] for r in table if r["grain"] == "daily"}
    assert daily[(date(2026, 11, 2), "Amazon EC2", "USD")] == D("1") and daily[(date(2026, 11, 2), "Amazon EC2", "EUR")] == D("4")
    assert len(daily) == 5


def test_normalized_tag_keys() -> None:
    assert normalized_tags('{"user:Cost Center": "42", "Team": "", "team": "data", "env": null}') == {"cost_center": "42", "team": "data"}
    assert normalized_tags(None) == {} and normalized_tags("not json") == {}


def test_cost_by_tag_splits_every_key_with_an_untagged_bucket(tmp_path: Path) -> None:
    day = date(2026, 11, 2)
    seed(tmp_path, [
        charge(day, "10", tags={"user:Team": "data"}), charge(day, "5", tags={"team": "web", "Env": "prod"}),
        charge(day, "2.5"), charge(day, "1", tags={"team": ""}), charge(day, "3", currency="EUR", tags={"team": "data"}),
    ])
    table = [r for r in cost_by_tag(tmp_path).to_pylist() if r["grain"] == "billing_period"]
    got = {(r["tag_key"], r["tag_value"], r["currency"]): r["effective_cost"] for r in table}
    assert got == {
        ("team", "data", "USD"): D("10"), ("team", "web", "USD"): D("5"), ("team", None, "USD"): D("3.5"),
        ("env", "prod", "USD"): D("5"), ("env", None, "USD"): D("13.5"),
        ("team", "data", "EUR"): D("3"), ("env", None, "EUR"): D("3"),
    }
    assert all(r["untagged"] == (r["tag_value"] is None) for r in table)


def usage_pattern(day: date) -> Decimal:
    """A week-shaped series with a little day-to-day noise (weekends cheaper)."""
    return D(100 if day.weekday() < 5 else 60) + D(day.toordinal() * 7919 % 13)


def test_anomalies_flag_a_spike_and_a_one_time_purchase_not_the_weekly_shape_or_a_monthly_purchase(tmp_path: Path) -> None:
    today = date(2026, 11, 26)
    first = today - timedelta(days=84)
    spike = date(2026, 11, 18)
    rows = [charge(d, str(usage_pattern(d) + (D(300) if d == spike else 0)), estimated=d >= today - timedelta(days=2))
            for d in (first + timedelta(days=n) for n in range(84))]
    rows += [charge(date(2026, m, 5), "500", category="Purchase", service="Savings Plans") for m in (9, 10, 11)]
    rows += [charge(date(2026, 11, 20), "250", category="Purchase", service="Amazon EC2")]
    rows += [charge(d, "80", currency="EUR") for d in (first + timedelta(days=n) for n in range(84))]  # flat: nothing to see
    table = cost_anomalies(seed(tmp_path, rows), today).to_pylist()
    assert [(r["day"], r["charge_category"], r["service_name"]) for r in table] == [
        (date(2026, 11, 20), "Purchase", "Amazon EC2"), (date(2026, 11, 18), "Usage", "Amazon EC2"),
    ]
    purchase, usage = table
    assert (purchase["expected"], purchase["actual"], purchase["impact"]) == (D(0), D(250), D(250))
    assert purchase["reason"] == "one-time Purchase of USD 250.00: no Purchase charge about a month before"
    expected = sorted(usage_pattern(spike - timedelta(weeks=k)) for k in range(1, 9))
    assert usage["expected"] == (expected[3] + expected[4]) / 2
    assert usage["actual"] == usage_pattern(spike) + 300 and usage["impact"] == usage["actual"] - usage["expected"]
    assert usage["direction"] == "up" and usage["provisional"] is False
    assert usage["reason"].startswith("+USD ")


def test_the_last_days_are_provisional() -> None:
    first = date(2026, 9, 1)
    last = date(2026, 11, 25)
    usage = {d: usage_pattern(d) for d in (first + timedelta(days=n) for n in range((last - first).days + 1))}
    usage[last] += 500
    [flag] = detect_usage_anomalies(usage, first, last)
    assert flag.day == last


def test_forecast_adds_weekday_medians_and_recurring_charges_with_an_interval(tmp_path: Path) -> None:
    today = date(2026, 11, 11)  # 10 complete days, 20 ahead (today's partial figures are forecast, not counted)
    first = date(2026, 9, 1)
    rows = [charge(d, "10") for d in (first + timedelta(days=n) for n in range((today - first).days))]
    rows += [charge(date(2026, m, 20), "50", category="Purchase", service="Support") for m in (9, 10)]  # recurs on the 20th
    rows += [charge(date(2026, 10, 3), "70", category="Purchase", service="Marketplace")]  # one-time, in the past
    rows += [charge(date(2026, 11, 2), "-5", category="Credit", service="Credits")]
    rows += [charge(d, "4", currency="EUR") for d in (today - timedelta(days=n) for n in range(1, 40))]
    [eur, usd] = cost_forecast(seed(tmp_path, rows), today).to_pylist()
    assert (usd["currency"], usd["days_elapsed"], usd["days_remaining"]) == ("USD", 10, 20)
    assert usd["month_to_date"] == D("95")  # 10 x 10 - 5
    assert usd["usage_ahead"] == D("200") and usd["recurring_ahead"] == D("50")
    assert usd["forecast"] == usd["forecast_low"] == usd["forecast_high"] == D("345")  # a flat series: no error to spread
    assert (eur["month_to_date"], eur["forecast"]) == (D("40"), D("120"))


def test_forecast_interval_comes_from_past_errors(tmp_path: Path) -> None:
    today = date(2026, 11, 21)
    first = date(2026, 8, 1)
    rows = [charge(d, str(usage_pattern(d))) for d in (first + timedelta(days=n) for n in range((today - first).days))]
    [usd] = cost_forecast(seed(tmp_path, rows), today).to_pylist()
    assert usd["forecast_low"] <= usd["forecast"] <= usd["forecast_high"] and usd["forecast_low"] < usd["forecast_high"]
    assert usd["forecast_high"] - usd["forecast_low"] < D("0.05") * usd["forecast"]
    actual_month = sum(usage_pattern(d) for d in (date(2026, 11, 1) + timedelta(days=n) for n in range(30)))
    assert abs(usd["forecast"] - actual_month) < D("0.02") * actual_month


def budgets_config(budgets: list[dict]):
    return parse_config({
        "accounts": [{"key": "aws-a", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01", "account_id": "111111111111"}],
        "budgets": budgets,
    }, Path("finops.yaml"))


def test_budget_status_actual_and_forecast_against_the_amount(tmp_path: Path) -> None:
    today = date(2026, 11, 11)
    first = date(2026, 9, 1)
    rows = [charge(d, "10", tags={"team": "data"}) for d in (first + timedelta(days=n) for n in range((today - first).days + 1))]
    rows += [charge(d, "1", service="Amazon S3") for d in (first + timedelta(days=n) for n in range((today - first).days + 1))]
    config = budgets_config([
        {"name": "all", "amount": 1000, "currency": "USD"},
        {"name": "data", "amount": "250", "currency": "USD", "scope": {"provider": "aws", "tags": {"Team": "data"}}},
        {"name": "small", "amount": 100.5, "currency": "USD", "scope": {"account": "aws-a", "service": "Amazon EC2"}},
        {"name": "euro", "amount": 10, "currency": "EUR"},
    ])
    assert not config.problems
    table = {r["budget"]: r for r in budget_status(seed(tmp_path, rows), config.budgets, today).to_pylist()}
    assert (table["all"]["actual"], table["all"]["forecast"], table["all"]["status"]) == (D("121"), D("330"), "OK")
    assert (table["data"]["actual"], table["data"]["forecast"], table["data"]["status"]) == (D("110"), D("300"), "FORECAST_OVER")
    assert table["data"]["scope"] == "provider=aws, tag Team=data" and table["data"]["forecast_pct"] == 120.0
    assert (table["small"]["actual"], table["small"]["status"]) == (D("110"), "OVER")
    assert (table["euro"]["actual"], table["euro"]["status"], table["euro"]["other_currencies"]) == (D("0"), "OK", ["USD"])


def test_budgets_are_validated_in_one_pass_without_stopping_the_accounts() -> None:
    config = budgets_config([
        {"name": "ok", "amount": 10, "currency": "USD"},
        {"name": "bad", "amount": -5, "currency": "usd", "scope": {"acount": "aws-a"}},
        {"name": "ok", "amount": 1, "currency": "EUR", "scope": {"account": "aws-b", "provider": "awss"}},
        {"amount": 1},
        "nope",
    ])
    assert [b.name for b in config.budgets] == ["ok"]
    assert not config.accounts[0].broken
    text = "\n".join(str(p) for p in config.problems)
    assert "budget 'bad' (budgets[1]): field 'amount' must be a positive amount like 5000 or 1250.50, got -5" in text
    assert "field 'currency' must be an ISO 4217 currency code like USD or EUR, got 'usd'. Fix: write the billing currency" in text
    assert "unknown field 'scope.acount'; did you mean 'account'?" in text
    assert "budget 'ok' (budgets[2]): no account with key 'aws-b'; did you mean 'aws-a'?" in text
    assert "unknown provider 'awss'; did you mean 'aws'?" in text
    assert "duplicate budget name (also budgets[0])" in text
    assert "budgets[3]: missing required field 'name'" in text and "missing required field 'currency'" in text
    assert "budgets[4]: each budget must be a mapping" in text
    with pytest.raises(Exception, match="budgets"):
        parse_config({"accounts": [], "budgets": [{"name": "x"}]}, Path("finops.yaml"), strict=True)
    assert str(budgets_config({"name": "x"}).problems[0]).endswith("e.g.\n  - name: data-platform\n    amount: 5000\n    currency: USD\n"
                                                                "    scope: {provider: aws, account: aws-main, service: Amazon EC2, tags: {team: data}}")


def test_anomaly_and_budget_verdicts() -> None:
    today = date(2026, 11, 26)
    anomaly = {"day": date(2026, 11, 24), "provider": "aws", "account_key": "aws-a", "service_name": "O'Brien", "currency": "USD",
               "charge_category": "Usage", "expected": D("100"), "actual": D("400"), "impact": D("300"), "provisional": True, "reason": "r"}
    old = {**anomaly, "day": date(2026, 11, 10)}
    verdict = insight.anomaly_verdict([anomaly, old], today)
    assert (verdict.passed, verdict.severity) == (False, "WARN")
    assert verdict.description == "1 cost anomaly in the 7 days before 2026-11-26 (impact USD +300.00)."
    assert "ServiceName = 'O''Brien'" in verdict.details[0]["where_to_look"]
    assert insight.anomaly_verdict([old], today).passed
    budget = {"budget": "b", "scope": "everything", "currency": "EUR", "amount": D("1000"), "actual": D("900"), "forecast": D("1200.5")}
    assert insight.budget_verdict([{**budget, "status": "OK"}]).passed
    warn = insight.budget_verdict([{**budget, "status": "FORECAST_OVER"}])
    assert (warn.passed, warn.severity, warn.description) == (False, "WARN", "Forecast over budget: b EUR 1,200.50 forecast of 1,000.00")
    error = insight.budget_verdict([{**budget, "status": "FORECAST_OVER"}, {**budget, "budget": "c", "status": "OVER"}])
    assert (error.severity, error.description) == ("ERROR", "Over budget: c EUR 900.00 of 1,000.00")
    assert [d["budget"] for d in error.details] == ["c", "b"]


def test_the_checks_run_in_dagster_on_the_materialized_tables(tmp_path: Path) -> None:
    import dagster as dg
    import yaml

    from finops_pipeline.jobs import load_definitions_for
    from finops_pipeline.resources import FinopsResource

    today = date(2026, 11, 26)
    first = today - timedelta(days=84)
    spike = today - timedelta(days=3)
    rows = [charge(d, str(usage_pattern(d) + (D(300) if d == spike else 0))) for d in (first + timedelta(days=n) for n in range(84))]
    data_dir = seed(tmp_path / "data", rows)
    registry = tmp_path / "finops.yaml"
    registry.write_text(yaml.safe_dump({
        "accounts": [{"key": "aws-a", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01T00:00:00Z",
                      "account_id": "111111111111", "role_arn": "arn:aws:iam::111111111111:role/r", "external_id_env": "X_ID"}],
        "budgets": [{"name": "small", "amount": 100, "currency": "USD"}, {"name": "big", "amount": 10000, "currency": "USD"}],
    }))
    finops = FinopsResource(config_file=str(registry), data_dir=str(data_dir), now="2026-11-26T08:00:00Z")
    defs = load_definitions_for(finops)
    result = dg.materialize(
        [*[a for a in defs.assets if a.key.to_user_string() in ("cost_anomalies", "budget_status")], *defs.asset_checks],  # type: ignore[union-attr,misc]
        resources={"finops": finops},
        selection=["cost_anomalies", "budget_status"],
    )
    assert result.success
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}  # type: ignore[attr-defined]
    anomalies = checks["no_recent_cost_anomalies"]
    assert not anomalies.passed and anomalies.severity == dg.AssetCheckSeverity.WARN
    assert "1 cost anomaly" in anomalies.description and "impact USD +" in anomalies.description
    assert "finops-pipeline query" in anomalies.metadata["where_to_look"].value
    budgets = checks["within_budget"]
    assert not budgets.passed and budgets.severity == dg.AssetCheckSeverity.ERROR and budgets.description.startswith("Over budget: small USD ")
