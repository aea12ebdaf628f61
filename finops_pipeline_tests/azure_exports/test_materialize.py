"""Azure export accounts through the real Dagster jobs: lake, catalog, reconciliation, 48-hour rule, secrets."""

from __future__ import annotations

from finops_pipeline import catalog
from finops_pipeline_tests.conftest import by_account, check_results, run_checks, run_events, run_refresh, statuses, write_config
from finops_sandbox import azure_exports as ax

from .conftest import entry

PERIOD = "2026-10"
CONNECTED = "2026-11-01T00:00:00Z"
AT_47H = "2026-11-02T23:00:00Z"
AT_49H = "2026-11-03T01:00:00Z"
SOURCE_ID = "azure_exports"


def test_refresh_materializes_reconciles_and_keeps_secrets_out(azurite, container, tmp_path, monkeypatch):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(azurite.account_name, container.container_name, account_key=azurite.account_key,
                                 permission=ContainerSasPermissions(read=True, list=True), expiry="2099-01-01T00:00:00Z")
    monkeypatch.setenv("TEST_AZURE_EXPORT_SAS", sas)
    focus_lines = ax.focus_rows(PERIOD, days=9)
    actual, amortized = ax.cost_details_rows(PERIOD, False, days=9), ax.cost_details_rows(PERIOD, True, days=9)
    ax.deliver(container, "focus", "focus-daily", PERIOD, focus_lines, "parquet")
    ax.deliver(container, "details", "actual", PERIOD, actual, "csv.gz", kind="ActualCost")
    ax.deliver(container, "details", "amortized", PERIOD, amortized, "csv.gz", kind="AmortizedCost")
    accounts = [
        {**entry(container.container_name, azurite, key="focus", root="focus"), "connected_at": CONNECTED},
        {**entry(container.container_name, azurite, key="details", root="details", dataset="cost_details", export="actual",
                 amortized="amortized", sas_token_env="TEST_AZURE_EXPORT_SAS"), "connected_at": CONNECTED},
        {**entry(container.container_name, azurite, key="new", root="nothing-yet"), "connected_at": CONNECTED},
    ]
    config = write_config(tmp_path, accounts)
    data_dir = tmp_path / "data"

    result = run_refresh(config, data_dir, PERIOD, now=AT_47H, source="exports")
    results = by_account(result)
    assert results["focus"].ok and results["details"].ok and results["new"].waiting, results
    assert result.ok  # "new" is not there yet, inside its 48 hours

    _, rows = catalog.query(data_dir, "SELECT x_AccountKey, BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM cost_daily "
                                      "WHERE x_Source = 'exports' GROUP BY ALL ORDER BY 1")
    assert rows == [("details", "EUR", ax.expected_totals(actual, "costInBillingCurrency")["EUR"],
                     ax.expected_totals(amortized, "costInBillingCurrency")["EUR"]),
                    ("focus", "USD", ax.expected_totals(focus_lines)["USD"], ax.expected_totals(focus_lines, "EffectiveCost")["USD"])]
    checks = check_results(run_checks(config, data_dir, now=AT_47H))
    assert all(checks[(f"{SOURCE_ID}/{a}", "reconciles_with_source")].passed for a in ("focus", "details"))
    assert statuses(run_checks(config, data_dir, now=AT_47H), SOURCE_ID) == {"focus": "OK", "details": "OK", "new": "PENDING"}
    later = statuses(run_checks(config, data_dir, now=AT_49H), SOURCE_ID)
    assert later["new"] in ("ERROR", "NO_DATA")

    events = run_events(result)
    assert sas.split("sig=")[1].split("&")[0] not in events and azurite.account_key not in events
    assert "azure.export_not_delivered" in events
