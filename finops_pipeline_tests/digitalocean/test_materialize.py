"""DigitalOcean through the real Dagster jobs: lake, catalog, checks, the 48-hour rule, failures."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from dagster import AssetCheckSeverity

from finops_pipeline.catalog import query
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline_tests.conftest import by_account, check_results, run_checks, run_events, run_refresh, statuses, write_config
from finops_pipeline_tests.digitalocean.conftest import do_entry
from finops_sandbox.digitalocean import ACCOUNT_READ, seed_team, team_charges

TODAY = date.today()
OPEN = TODAY.strftime("%Y-%m")
CLOSED = (TODAY.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
SOURCE_ID = "digitalocean_billing"
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=5)  # when the empty team was connected
LONG_AGO = T0 - timedelta(days=120)
TOKENS = {"DO_TOKEN_PROD": "dop_v1_prod_7f3a9c1e5b", "DO_TOKEN_EMPTY": "dop_v1_empty_2d8e4b6a0c",
          "DO_TOKEN_FLAKY": "dop_v1_flaky_9b1d3f5a7e", "DO_TOKEN_NOSCOPE": "dop_v1_noscope_4c6e8a0b2d"}


def check(account: str, name: str = "billing_data_within_48h") -> tuple[str, str]:
    return (f"{SOURCE_ID}/{account}", name)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(sandbox, name, token_env, difference=None, scopes=None, team=None, with_data=True):
    team = team or sandbox.add_team(name)
    sandbox.add_token(TOKENS[token_env], team, scopes)
    charges = team_charges(name, TODAY - timedelta(days=65), TODAY - timedelta(days=1)) if with_data else []
    if with_data:
        seed_team(team, charges, TODAY, {CLOSED: difference} if difference else None)
    return team, charges


def month_sum(charges, period):
    return sum((c.amount for c in charges if c.day.strftime("%Y-%m") == period), Decimal(0))


def test_months_land_in_the_lake_and_catalog_and_the_checks_follow_the_48_hour_rule(do, monkeypatch, tmp_path: Path):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    team, charges = seed(do, "Production", "DO_TOKEN_PROD", difference=Decimal("3.17"))
    seed(do, "Empty", "DO_TOKEN_EMPTY", with_data=False)
    config = write_config(tmp_path, [
        do_entry(do, "do-prod", "DO_TOKEN_PROD", LONG_AGO),
        do_entry(do, "do-empty", "DO_TOKEN_EMPTY", T0),
    ])
    data = tmp_path / "data"
    before = iso(T0 + timedelta(hours=47))
    for period in (CLOSED, OPEN):
        run_refresh(config, data, period, now=before)

    closed_path = PartitionKey("digitalocean", "billing", "do-prod", CLOSED).path(data)
    assert closed_path.exists()
    assert read_partition_totals(closed_path) == {"USD": month_sum(charges, CLOSED)}

    _, rows = query(data, """SELECT x_AccountKey, strftime(BillingPeriodStart, '%Y-%m'), BillingCurrency, sum(BilledCost),
                                    count(*), bool_and(x_Estimated), bool_or(x_Estimated)
                             FROM cost_daily WHERE x_Provider = 'digitalocean' GROUP BY ALL ORDER BY 1, 2""")
    by_period = {(r[0], r[1]): r[2:] for r in rows}
    closed_points = sum(1 for c in charges if c.day.strftime("%Y-%m") == CLOSED)
    assert by_period[("do-prod", CLOSED)][:3] == ("USD", month_sum(charges, CLOSED), closed_points)
    assert by_period[("do-prod", CLOSED)][3:] == (False, False)  # invoiced: final
    if month_sum(charges, OPEN):
        assert by_period[("do-prod", OPEN)][:2] == ("USD", month_sum(charges, OPEN))
        assert by_period[("do-prod", OPEN)][3:] == (True, True)  # the open month is an estimate
    assert not any(key == "do-empty" for key, _ in by_period)
    # FOCUS InvoiceId: the issued invoice's number on every row of the invoiced month, NULL while the month is open.
    _, invoice_ids = query(data, """SELECT strftime(BillingPeriodStart, '%Y-%m'), list(DISTINCT InvoiceId), count(InvoiceId), count(*)
                                    FROM cost_daily WHERE x_AccountKey = 'do-prod' GROUP BY ALL""")
    by_month = {r[0]: r[1:] for r in invoice_ids}
    issued = next(i["invoice_id"] for i in team.invoices if i["invoice_period"] == CLOSED)
    assert by_month[CLOSED][0] == [issued] and by_month[CLOSED][1] == by_month[CLOSED][2]
    if OPEN in by_month:
        assert by_month[OPEN][1] == 0

    result = run_checks(config, data, now=before)
    checks = check_results(result)
    assert checks[check("do-prod", "reconciles_with_source")].passed
    assert statuses(result, SOURCE_ID) == {"do-prod": "OK", "do-empty": "PENDING"}
    assert checks[check("do-empty")].passed  # do-empty is 47 h old: still PENDING
    invoice = checks[check("do-prod", "invoice_matches_daily")]
    assert not invoice.passed and invoice.severity == AssetCheckSeverity.WARN
    month = invoice.metadata["by_month"].data[CLOSED]
    assert Decimal(month["difference"]) == Decimal("-3.17")
    assert Decimal(month["invoice_amount"]) == month_sum(charges, CLOSED) + Decimal("3.17")
    assert Decimal(month["daily_total"]) == month_sum(charges, CLOSED)

    after = check_results(run_checks(config, data, now=iso(T0 + timedelta(hours=49))))
    within = after[check("do-empty")]
    assert not within.passed and within.severity == AssetCheckSeverity.ERROR
    assert within.metadata["status"].value == "NO_DATA"
    # Its billing calls succeed with no usage: the token can read billing, so the fix is about the team.
    assert within.metadata["cause"].value == "The pulls succeed, but billing insights report no usage for this team."
    assert "tokens are per team" in within.metadata["fix"].value


def test_a_failing_team_keeps_its_last_good_month_and_never_stops_the_others(do, monkeypatch, tmp_path: Path):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    prod, _ = seed(do, "Production", "DO_TOKEN_PROD")
    _, flaky_charges = seed(do, "Flaky", "DO_TOKEN_FLAKY")
    seed(do, "Production", "DO_TOKEN_NOSCOPE", team=prod, scopes=[ACCOUNT_READ, "droplet:read"], with_data=False)
    config = write_config(tmp_path, [
        do_entry(do, "do-prod", "DO_TOKEN_PROD", LONG_AGO),
        do_entry(do, "do-flaky", "DO_TOKEN_FLAKY", LONG_AGO),
        do_entry(do, "do-noscope", "DO_TOKEN_NOSCOPE", LONG_AGO),
    ])
    data = tmp_path / "data"
    first_run = datetime.now(timezone.utc) - timedelta(hours=6)
    run_refresh(config, data, CLOSED, now=iso(first_run))
    flaky_path = PartitionKey("digitalocean", "billing", "do-flaky", CLOSED).path(data)
    flaky_before = flaky_path.read_bytes()

    # The flaky team's token is revoked; production's data changes.
    do.revoke(TOKENS["DO_TOKEN_FLAKY"])
    new_prod = team_charges("Production v2", TODAY - timedelta(days=65), TODAY - timedelta(days=1))
    seed_team(prod, new_prod, TODAY)
    now = iso(first_run + timedelta(hours=6))
    result = run_refresh(config, data, CLOSED, now=now)

    assert flaky_path.read_bytes() == flaky_before  # last good month untouched
    prod_path = PartitionKey("digitalocean", "billing", "do-prod", CLOSED).path(data)
    assert read_partition_totals(prod_path) == {"USD": month_sum(new_prod, CLOSED)}
    assert not PartitionKey("digitalocean", "billing", "do-noscope", CLOSED).path(data).exists()
    _, rows = query(data, "SELECT x_AccountKey, sum(BilledCost) FROM cost_daily WHERE x_Provider = 'digitalocean' GROUP BY 1")
    assert dict(rows) == {"do-prod": month_sum(new_prod, CLOSED), "do-flaky": month_sum(flaky_charges, CLOSED)}

    accounts = by_account(result)
    assert not result.ok and accounts["do-prod"].ok
    assert accounts["do-flaky"].code == "digitalocean.token_rejected"
    assert accounts["do-noscope"].code == "digitalocean.missing_billing_scope"

    checks = run_checks(config, data, now=now)
    results = check_results(checks)
    noscope, flaky = results[check("do-noscope")], results[check("do-flaky")]
    assert not noscope.passed and noscope.severity == AssetCheckSeverity.ERROR  # do-noscope never had data
    assert not flaky.passed and flaky.severity == AssetCheckSeverity.WARN  # do-flaky's data flowed before
    assert statuses(checks, SOURCE_ID) == {"do-prod": "OK", "do-flaky": "ERROR", "do-noscope": "ERROR"}
    assert "revoked" in flaky.metadata["cause"].value and "billing read access" in flaky.metadata["fix"].value
    assert noscope.metadata["cause"].value == "The API token lacks billing read access."

    _, table = query(data, "SELECT account_key, status, error_code, fix FROM billing_connection_status ORDER BY 1")
    by_key = {key: (status, code, fix) for key, status, code, fix in table}
    assert by_key["do-prod"][:2] == ("OK", None)
    assert by_key["do-flaky"][:2] == ("ERROR", "digitalocean.token_rejected")
    assert by_key["do-noscope"][:2] == ("ERROR", "digitalocean.missing_billing_scope")

    # The tokens appear nowhere: not in the lake, the state files, the catalog or the run's events.
    written = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    events = run_events(result) + " ".join(str(e) for e in checks.all_events)
    for token in TOKENS.values():
        assert token.encode() not in written and token not in events
