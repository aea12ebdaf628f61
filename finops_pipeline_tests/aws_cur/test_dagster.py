"""CUR accounts through Dagster: the refresh_aws_cur job, the lake, the catalog and both checks."""

from __future__ import annotations

from decimal import Decimal

from dagster import AssetKey

from finops_pipeline.catalog import query
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline_tests.conftest import by_account, check_results, run_checks, run_refresh, write_config
from finops_sandbox import cur as sandbox_cur

from .conftest import BUCKET, entry, lines_for

PERIOD = "2026-10"


def check(account: str, name: str = "billing_data_within_48h") -> tuple[str, str]:
    return (f"aws_cur/{account}", name)


def test_materialization_lake_catalog_and_checks(moto, bucket, tmp_path):
    legacy = lines_for(PERIOD, seed="legacy-account")
    current = lines_for(PERIOD, seed="cur2-account")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "legacy-rep", PERIOD, legacy, "legacy-csv-gz")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "cur2-rep", PERIOD, current, "cur2-parquet")
    config = write_config(tmp_path, [
        entry("cur-legacy", report="legacy-rep", version="legacy", endpoint=moto.url),
        entry("cur-v2", report="cur2-rep", endpoint=moto.url),
        # Connected on 2026-10-20 12:00Z and never delivered: the 48-hour check's subject.
        entry("cur-new", report="not-yet", endpoint=moto.url, connected_at="2026-10-20T12:00:00Z"),
    ])
    data_dir = tmp_path / "data"

    result = run_refresh(config, data_dir, PERIOD, now="2026-10-22T11:00:00Z")
    # cur-new has no manifest yet, 47 h after it was connected: expected, so the run stays green.
    assert result.ok
    accounts = by_account(result)
    assert accounts["cur-legacy"].ok and accounts["cur-v2"].ok
    assert (accounts["cur-new"].ok, accounts["cur-new"].waiting, accounts["cur-new"].code) == (False, True, "aws.cur_manifest_missing")
    [run] = [r for r in result.runs if r.job_def.name == "refresh_aws_cur"]
    assert run.success and {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()} == {"aws_cur/cur-legacy", "aws_cur/cur-v2"}
    # 49 h: still no manifest, now a failure that turns the run red.
    late = run_refresh(config, data_dir, PERIOD, now="2026-10-22T13:00:00Z", account="cur-new")
    assert not late.ok and not by_account(late)["cur-new"].waiting
    assert not [r for r in late.runs if r.job_def.name == "refresh_aws_cur"][0].success

    for key, lines in (("cur-legacy", legacy), ("cur-v2", current)):
        path = PartitionKey("aws", "cur", key, PERIOD).path(data_dir)
        assert path.exists()
        assert read_partition_totals(path) == sandbox_cur.expected_totals(lines)
        _, rows = query(data_dir, "SELECT BillingCurrency, sum(BilledCost) FROM cost_daily WHERE x_AccountKey = ? GROUP BY 1", [key])
        assert {c: Decimal(str(v)) for c, v in rows} == sandbox_cur.expected_totals(lines)
    _, [(services,)] = query(data_dir, "SELECT count(DISTINCT ServiceName) FROM cost_daily WHERE x_Source = 'cur'")
    assert services == 3
    assert not PartitionKey("aws", "cur", "cur-new", PERIOD).path(data_dir).exists()

    # 47 h after cur-new was connected: still inside the window, the check passes.
    checks = check_results(run_checks(config, data_dir, now="2026-10-22T11:00:00Z"))
    assert all(checks[check(a, "reconciles_with_source")].passed for a in ("cur-legacy", "cur-v2", "cur-new"))
    assert all(checks[check(a)].passed for a in ("cur-legacy", "cur-v2", "cur-new"))
    # 49 h: cur-new has no data and its last pull found no manifest -> its check fails with the CUR fix.
    checks = check_results(run_checks(config, data_dir, now="2026-10-22T13:00:00Z"))
    assert [a for a in ("cur-legacy", "cur-v2", "cur-new") if not checks[check(a)].passed] == ["cur-new"]
    fix = checks[check("cur-new")].metadata["fix"].value
    assert "Data Exports" in fix and "s3:GetObject" in fix
    assert checks[check("cur-v2", "reconciles_with_source")].passed


def test_48h_check_for_an_account_never_pulled(moto, tmp_path):
    config = write_config(tmp_path, [entry("cur-quiet", report="x", endpoint=moto.url, connected_at="2026-10-20T12:00:00Z")])
    data_dir = tmp_path / "data"
    assert check_results(run_checks(config, data_dir, now="2026-10-22T11:00:00Z"))[check("cur-quiet")].passed
    failed = check_results(run_checks(config, data_dir, now="2026-10-22T13:00:00Z"))[check("cur-quiet")]
    assert not failed.passed
    assert failed.metadata["status"].value == "NO_DATA" and "Data Exports" in failed.metadata["fix"].value
    # Nothing was pulled, so nothing proves or disproves a cause: it says so and how to run one.
    assert "No pull of this account has run yet" in failed.metadata["cause"].value
    assert "finops-pipeline refresh --account cur-quiet" in failed.metadata["fix"].value


def test_a_failing_account_keeps_its_last_good_data_and_the_others_refresh(moto, bucket, s3, tmp_path):
    good_a = lines_for(PERIOD, seed="a")
    good_b = lines_for(PERIOD, seed="b")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep-a", PERIOD, good_a, "cur2-parquet")
    broken_b = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep-b", PERIOD, good_b, "cur2-csv-gz")
    config = write_config(tmp_path, [entry("cur-a", report="rep-a", endpoint=moto.url), entry("cur-b", report="rep-b", endpoint=moto.url)])
    data_dir = tmp_path / "data"
    assert run_refresh(config, data_dir, PERIOD).ok

    # Next delivery: a restates its month, b's manifest lists a file that is gone.
    restated_a = lines_for(PERIOD, seed="a2")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep-a", PERIOD, restated_a, "cur2-parquet")
    broken_b = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep-b", PERIOD, lines_for(PERIOD, seed="b2"), "cur2-csv-gz")
    s3.delete_object(Bucket=BUCKET, Key=broken_b.data_keys[0])
    second = run_refresh(config, data_dir, PERIOD)
    assert not second.ok and by_account(second)["cur-a"].ok and by_account(second)["cur-b"].code == "aws.cur_file_missing"

    _, rows = query(data_dir, "SELECT x_AccountKey, sum(BilledCost) FROM cost_daily GROUP BY 1 ORDER BY 1")
    assert {k: Decimal(str(v)) for k, v in rows} == {
        "cur-a": sandbox_cur.expected_totals(restated_a)["USD"],
        "cur-b": sandbox_cur.expected_totals(good_b)["USD"],  # the last good data
    }
    _, status = query(data_dir, "SELECT account_key, status, error_code FROM billing_connection_status ORDER BY 1")
    assert [tuple(r) for r in status] == [("cur-a", "OK", None), ("cur-b", "ERROR", "aws.cur_file_missing")]


def test_a_sensor_run_refreshes_only_its_account(moto, bucket, tmp_path):
    from finops_pipeline.jobs import load_definitions_for
    from finops_pipeline_tests.conftest import finops_resource

    for report in ("rep-a", "rep-b"):
        sandbox_cur.deliver(bucket, BUCKET, "exports", report, PERIOD, lines_for(PERIOD, seed=report), "cur2-parquet")
    config = write_config(tmp_path, [entry("cur-a", report="rep-a", endpoint=moto.url), entry("cur-b", report="rep-b", endpoint=moto.url)])
    data_dir = tmp_path / "data"
    defs = load_definitions_for(finops_resource(config, data_dir))
    result = defs.resolve_job_def("refresh_aws_cur").execute_in_process(partition_key=PERIOD, asset_selection=[AssetKey(["aws_cur", "cur-b"])])
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"aws_cur/cur-b"}
    assert PartitionKey("aws", "cur", "cur-b", PERIOD).path(data_dir).exists()
    assert not PartitionKey("aws", "cur", "cur-a", PERIOD).path(data_dir).exists()
