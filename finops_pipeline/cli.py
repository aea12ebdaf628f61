"""`finops-pipeline`: the demo, the sandbox for the UI, SQL on the catalog, config validation."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from finops_pipeline.config import ConfigError, config_path, data_dir, load_config, read_registry
from finops_pipeline.display import format_table, trend_chart

# Shipped in the package (not read from a checkout), so an installed finops_pipeline finds them.
INSTANCE_TEMPLATES = Path(__file__).resolve().parent / "instance"


def ensure_dagster_home() -> Path:
    """A persistent local Dagster home: $DAGSTER_HOME, else ./.dagster, holding the instance settings and workspace file.

    dagster.yaml is copied from the package's template only when the home has none, so local edits
    (another storage, other limits) survive; workspace.yaml is ours and rewritten every time.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if settings.is_symlink() and not settings.exists():
        settings.unlink()  # a link to the checkout's old dagster.yaml, which moved into the package
    if not settings.exists():
        shutil.copyfile(INSTANCE_TEMPLATES / "dagster.yaml", settings)
    (home / "workspace.yaml").write_text((INSTANCE_TEMPLATES / "workspace.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _sandbox_missing() -> int:
    print(
        "error: the demo and the sandbox need the finops_sandbox package (the local stand-ins), which is not installed:\n"
        "  pip install -e ./sandbox    from a checkout of finops_pipeline (`make demo` and `make ui` do this)",
        file=sys.stderr,
    )
    return 2


def _data_dir(args: argparse.Namespace) -> Path | str:
    """--data-dir or FINOPS_DATA_DIR: an absolute Path, or an object-storage URL (s3://, az://, gs://)."""
    from finops_pipeline.storage import resolve

    return resolve(args.data_dir) if args.data_dir else data_dir()


def _print_query(directory: Path | str, title: str, sql: str) -> None:
    from finops_pipeline.catalog import query

    columns, rows = query(directory, sql)
    print(f"\n{title}\n{format_table(columns, rows)}")


def print_report(directory: Path) -> None:
    """What a FinOps dashboard shows, read from the catalog's tables."""
    from finops_pipeline.catalog import query

    _print_query(
        directory,
        "Cost by provider (BilledCost; windows are whole UTC days before today)",
        """SELECT provider, currency, month_to_date, last_7_days, last_30_days, previous_30_days,
                  change_pct_vs_previous_30_days AS "change %", CASE WHEN has_data THEN '' ELSE 'No data' END AS note
           FROM provider_cost_summary ORDER BY provider, currency""",
    )
    _print_query(
        directory,
        "By account",
        """SELECT provider, account_key, cloud_account_id, cloud_account_name, currency, month_to_date, last_30_days
           FROM cost_by_account ORDER BY provider, last_30_days DESC""",
    )
    _, trend = query(directory, "SELECT provider, currency, day, billed_cost FROM daily_cost_trend ORDER BY day")
    print("\nDaily trend, last 30 days\n" + trend_chart(trend))
    _print_insight(directory)
    _print_connections(directory)


def _print_optional(directory: Path, title: str, sql: str, empty: str | None = None) -> None:
    """A section from a table that may not be built yet (then it is skipped, saying so)."""
    import duckdb

    from finops_pipeline.catalog import query

    try:
        columns, rows = query(directory, sql)
    except duckdb.CatalogException:
        print(f"\n{title}\n(not built yet)")
        return
    if not rows and empty:
        print(f"\n{title}\n{empty}")
    else:
        print(f"\n{title}\n{format_table(columns, rows)}")


def _print_insight(directory: Path) -> None:
    """Totals per currency, the top services, the month-end forecast and recent anomalies."""
    _print_optional(
        directory,
        "Total per currency, all providers (BilledCost; never summed across currencies)",
        """SELECT currency, sum(month_to_date) AS month_to_date, sum(last_7_days) AS last_7_days, sum(last_30_days) AS last_30_days,
                  count(DISTINCT provider) AS providers
           FROM provider_cost_summary WHERE has_data GROUP BY currency ORDER BY currency""",
    )
    _print_optional(
        directory,
        "Total in the reporting currency, this month (the only sum across currencies; rates from the provider or the ECB)",
        """SELECT reporting_currency, sum(billed_cost_reporting) AS billed, sum(effective_cost_reporting) AS effective,
                  string_agg(DISTINCT billing_currency || ' via ' || rate_source, ', ') AS converted,
                  max(rate_date) AS latest_rate_date, count(*) FILTER (WHERE rate_source = 'missing') AS days_without_rate
           FROM cost_in_reporting_currency
           WHERE day >= date_trunc('month', (SELECT max(as_of) FROM provider_cost_summary)) GROUP BY reporting_currency""",
        empty="(set reporting_currency in finops.yaml to see one; drop the ECB's eurofxref-hist.csv in <data>/rates/ for rates)",
    )
    _print_optional(
        directory,
        "Top services, last 30 days (EffectiveCost)",
        """WITH s AS (SELECT currency, provider, service_name, sum(effective_cost) AS last_30_days
                      FROM cost_by_service
                      WHERE grain = 'daily' AND period_start >= (SELECT max(as_of) FROM provider_cost_summary) - 30
                        AND period_start < (SELECT max(as_of) FROM provider_cost_summary)
                      GROUP BY currency, provider, service_name),
                r AS (SELECT *, row_number() OVER (PARTITION BY currency ORDER BY last_30_days DESC, service_name) AS rank FROM s)
           SELECT currency, rank, provider, service_name, last_30_days FROM r WHERE rank <= 5 ORDER BY currency, rank""",
    )
    _print_optional(
        directory,
        "Month-end forecast (EffectiveCost; complete days so far + same-weekday medians + recurring charges; 10-90 % interval)",
        """SELECT provider, account_key, currency, billing_period AS month, days_elapsed AS days, month_to_date, forecast,
                  forecast_low AS low, forecast_high AS high
           FROM cost_forecast ORDER BY currency, forecast DESC""",
        "(no account with recent costs)",
    )
    _print_optional(
        directory,
        "Cost anomalies, last 7 days (EffectiveCost against the same weekday's median of 8 weeks)",
        """SELECT day, provider, account_key, service_name, currency, expected, actual, impact,
                  CASE WHEN provisional THEN 'provisional' ELSE '' END AS note
           FROM cost_anomalies WHERE day >= as_of - 7 ORDER BY abs(impact) DESC, day DESC LIMIT 15""",
        "none",
    )


def _print_connections(directory: Path) -> None:
    from finops_pipeline.catalog import query

    _print_query(
        directory,
        "Billing connections",
        """SELECT status, provider, account_key, connected_for AS "connected",
                  first_day_with_data AS first_day, last_day_with_data AS last_day, last_successful_pull
           FROM billing_connection_status""",
    )
    _, attention = query(directory, "SELECT status, account_key, cause, fix FROM billing_connection_status WHERE cause IS NOT NULL")
    for status, key, cause, fix in attention:
        print(f"\n  {status} {key}\n    Cause: {cause}\n    Fix:   {fix}")


def _demo(args: argparse.Namespace) -> int:
    try:
        from finops_sandbox.demo import run_demo
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "finops_sandbox":
            raise
        return _sandbox_missing()

    home = ensure_dagster_home()
    directory = _data_dir(args)
    print(f"Running the pipeline on local stand-ins (Dagster home {home}, data {directory})")
    print("Some demo accounts are misconfigured on purpose: their runs end red in Dagster, and their causes and fixes are printed below.")
    from finops_pipeline.catalog import catalog_path
    from finops_pipeline.storage import is_remote, join, work_dir

    dashboard: list[Path] = []

    def report(_: object) -> None:  # while the stand-ins run: a demo lake on their moto goes with them
        print_report(directory)
        dashboard.append(_write_dashboard(directory))

    config = run_demo(directory, then=report)
    print(f"\nDashboard (open in a browser): {dashboard[0].absolute()}")
    if is_remote(directory):  # the next commands must find this lake's catalog in the work directory
        query_command = f"FINOPS_DATA_DIR={directory} FINOPS_WORK_DIR={work_dir(directory)} .venv/bin/finops-pipeline query"
        ui_line = "make ui runs the stand-ins and the UI on a local lake (this demo's bucket on the stand-ins' S3 went with them; its catalog's tables stay)"
    else:
        query_command = ".venv/bin/finops-pipeline query"
        ui_line = "make ui        (stand-ins + dagster dev on http://127.0.0.1:3000)"
    print(
        f"""
Next:
  Dagster UI on this data:  {ui_line}
  SQL on the tables:        {query_command} "SELECT * FROM provider_cost_summary"
  The files:                {catalog_path(directory)} (catalog), {join(directory, "lake")}/ (Parquet)
  The registry it used:     {config.path}"""
    )
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sandbox(args: argparse.Namespace) -> int:
    try:
        from finops_sandbox.demo import running_sandbox
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "finops_sandbox":
            raise
        return _sandbox_missing()

    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` stops the stand-ins and dagster dev like Ctrl-C

    home = ensure_dagster_home()
    directory = _data_dir(args)
    with running_sandbox(directory, datetime.now(timezone.utc)) as config:
        env = {**os.environ, "FINOPS_CONFIG": str(config.path), "FINOPS_DATA_DIR": str(directory), "DAGSTER_HOME": str(home)}
        print(f"Stand-ins running; registry {config.path}. Ctrl-C stops them.", flush=True)
        if not args.ui:
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
        command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", str(home / "workspace.yaml")]
        # Its own process group, so that on Ctrl-C we can stop dagster dev and everything it started.
        process = subprocess.Popen(command, env=env, cwd=home, start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            return _stop_process_group(process)


def _stop_process_group(process: subprocess.Popen, grace_seconds: float = 30) -> int:
    """SIGINT (dagster dev shuts its webserver and daemon down), then SIGKILL whatever is left."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # children that outlived their parent
        except ProcessLookupError:
            pass


def _write_dashboard(directory: Path | str) -> Path:
    from finops_pipeline.dashboard import write_dashboard

    return write_dashboard(directory)


def _dashboard(args: argparse.Namespace) -> int:
    from finops_pipeline.dashboard import DashboardNotReady

    directory = _data_dir(args)
    try:
        path = _write_dashboard(directory)
    except DashboardNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path.absolute())
    return 0


def _query(args: argparse.Namespace) -> int:
    from finops_pipeline.catalog import query

    directory = _data_dir(args)
    try:
        columns, rows = query(directory, args.sql)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a SQL error: show DuckDB's message, not a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print(format_table(columns, rows))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Every mistake in one pass, each with its fix: exit 1 if any, 2 only when the file cannot be read."""
    config = read_registry(args.config)
    print(f"{config.path}: {len(config.accounts)} account(s)")
    for account in config.accounts:
        state = "ERROR (see below)" if account.broken else f"connected {account.connected_at:%Y-%m-%d %H:%MZ}"
        print(f"  {account.key:<24} {account.provider + '/' + account.source:<28} {state}")
    for problem in config.problems:
        print(f"error: {problem}", file=sys.stderr)
    missing = config.missing_environment()
    for variable in missing:
        print(f"error: {variable}", file=sys.stderr)
    problems = len(config.problems) + len(missing)
    if problems:
        print(f"{problems} problem(s) in {config.path}", file=sys.stderr)
    return 1 if problems else 0


def _periods(args: argparse.Namespace, now: datetime) -> list[str]:
    """--period, or the last N billing periods, or the open one(s) as the schedule would."""
    from finops_pipeline.dagster_sources import month_shift
    from finops_pipeline.status import open_periods

    if args.period:
        return [args.period]
    if args.last:
        current = now.strftime("%Y-%m")
        return [month_shift(current, -n) for n in reversed(range(args.last))]
    return sorted(open_periods(now))


def _result_line(result) -> str:
    from finops_pipeline.dagster_sources import money

    where = f"{result.account:<24} {result.provider}/{result.source:<16} {result.billing_period}"
    if result.ok:
        billed = ", ".join(money(v, c) for c, v in result.totals.items()) or "no costs"
        return f"ok    {where}  {result.rows:>7,} rows  {billed}  ({result.api_calls} API calls)"
    if result.waiting:
        return f"wait  {where}  [{result.code}] {result.cause} (expected inside 48 hours of connection)\n      Fix: {result.fix}"
    return f"FAIL  {where}  [{result.code}] {result.cause}\n      Fix: {result.fix}"


def _refresh(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from finops_pipeline.jobs import QUIET, refresh, select_accounts
    from finops_pipeline.resources import FinopsResource

    config_file = Path(args.config).absolute() if args.config else config_path().absolute()
    config = load_config(config_file)
    accounts = select_accounts(config, args.provider, args.source, args.account)
    if not accounts:
        wanted = ", ".join(f"{k}={v}" for k, v in (("provider", args.provider), ("source", args.source), ("account", args.account)) if v)
        print(f"error: no account in {config.path} matches {wanted or 'the registry'}; "
              f"`finops-pipeline check-config` lists them", file=sys.stderr)
        return 2
    ensure_dagster_home()
    finops = FinopsResource(config_file=str(config_file), data_dir=str(_data_dir(args)))
    periods = _periods(args, datetime.now(timezone.utc))
    print(f"Refreshing {len(accounts)} account(s) for {', '.join(periods)} (runs recorded in the Dagster instance at {os.environ['DAGSTER_HOME']})", flush=True)
    refreshed = refresh(finops, accounts, periods, instance=DagsterInstance.get(), run_config=QUIET, full_refresh=args.full)
    for result in refreshed.results:
        print(_result_line(result))
    failed = [r for r in refreshed.results if not r.ok and not r.waiting]
    if failed:
        print(f"\n{len(failed)} of {len(refreshed.results)} account pull(s) failed; the runs are red in the Dagster UI.", file=sys.stderr)
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    """The connection table with its "as of" time; exit 1 when an account needs attention, 2 when there is no table."""
    import duckdb

    from finops_pipeline.catalog import query
    from finops_pipeline.lake import mart_path
    from finops_pipeline.storage import info

    directory = _data_dir(args)
    try:
        _, statuses = query(directory, "SELECT status FROM billing_connection_status")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.CatalogException:
        print(f"error: the billing_connection_status table is not in {directory} yet: run the pipeline (make demo, a refresh, "
              "or the check_billing_connections job) first.", file=sys.stderr)
        return 2
    built = datetime.fromtimestamp(info(mart_path(directory, "billing_connection_status"))["mtime"], timezone.utc)
    print(f"Billing connections as of {built:%Y-%m-%d %H:%M:%S} UTC (when the status table was last built)")
    _print_connections(directory)
    attention = sum(1 for (status,) in statuses if status in ("ERROR", "NO_DATA"))
    if attention:
        print(f"\n{attention} account(s) need attention (ERROR or NO_DATA).", file=sys.stderr)
        return 1
    return 0


def _billing_period(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a billing period like 2026-11") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the pipeline on local stand-ins with synthetic billing and print the dashboard")
    demo.add_argument("--data-dir", help="default: $FINOPS_DATA_DIR or ./data")
    demo.set_defaults(run=_demo)

    sandbox = commands.add_parser("sandbox", help="keep the demo's stand-ins running (with --ui, also the Dagster UI)")
    sandbox.add_argument("--data-dir")
    sandbox.add_argument("--ui", action="store_true", help="also run `dagster dev` on the sandbox registry")
    sandbox.add_argument("--port", type=int, default=3000, help="Dagster UI port (with --ui)")
    sandbox.set_defaults(run=_sandbox)

    dashboard = commands.add_parser("dashboard", help="write the dashboard (one self-contained HTML file) from the catalog and print its path")
    dashboard.add_argument("--data-dir", help="default: $FINOPS_DATA_DIR or ./data")
    dashboard.set_defaults(run=_dashboard)

    query = commands.add_parser("query", help="run SQL on the catalog (read-only) and print the result")
    query.add_argument("sql")
    query.add_argument("--data-dir")
    query.add_argument("--csv", action="store_true", help="CSV instead of a table")
    query.set_defaults(run=_query)

    check = commands.add_parser("check-config", help="validate finops.yaml and the environment variables it names")
    check.add_argument("--config", help="default: $FINOPS_CONFIG or ./finops.yaml")
    check.set_defaults(run=_check_config)

    refresh = commands.add_parser(
        "refresh", help="pull billing now through the real Dagster jobs (the knowledge base's 'click Refresh') and print each account's result"
    )
    refresh.add_argument("--provider", help="only this provider's accounts (aws, gcp, azure, digitalocean)")
    refresh.add_argument("--source", help="only this source (cost_explorer, cur, bigquery_export, cost_management, billing)")
    refresh.add_argument("--account", help="only the account with this key")
    when = refresh.add_mutually_exclusive_group()
    when.add_argument("--period", type=_billing_period, help="one billing period, YYYY-MM (default: the open one(s), as the schedule does)")
    when.add_argument("--last", type=int, metavar="N", help="the last N billing periods, this one included")
    refresh.add_argument("--full", action="store_true",
                         help="whole months, also where a source pulls only the days that can still change (Cost Explorer)")
    refresh.add_argument("--config", help="default: $FINOPS_CONFIG or ./finops.yaml")
    refresh.add_argument("--data-dir", help="default: $FINOPS_DATA_DIR or ./data")
    refresh.set_defaults(run=_refresh)

    status = commands.add_parser("status", help="print the billing connection status table")
    status.add_argument("--data-dir")
    status.set_defaults(run=_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`finops-pipeline status | head`): stop quietly. Point stdout at /dev/null so the
        # interpreter's own flush at exit does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
