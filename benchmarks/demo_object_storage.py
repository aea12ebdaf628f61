"""The whole demo on a local lake, then on S3 (the AWS stand-in's moto server), with the same clock and the
same synthetic billing: how long each takes, and whether cost_daily in the bucket reconciles with the
local lake to the cent, per provider, account, billing period and currency (a script, not a test).

    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/demo_object_storage.py
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/demo_object_storage.py --backends s3   # the S3 run only

Each run has its own Dagster home and work directory under a temporary directory. The S3 lake lives in
moto's memory, so it is read (through `finops-pipeline`'s catalog connection) before the stand-ins stop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))

from finops_pipeline import serving, storage  # noqa: E402
from finops_pipeline.catalog import query  # noqa: E402
from finops_pipeline.lake import list_partitions  # noqa: E402
from finops_sandbox.demo import LAKE_ENDPOINT_VARIABLES, run_demo  # noqa: E402

TOTALS_SQL = """SELECT x_Provider, x_AccountKey, strftime(BillingPeriodStart, '%Y-%m'), BillingCurrency, sum(BilledCost), count(*)
                FROM cost_daily GROUP BY ALL ORDER BY ALL"""
Totals = dict[tuple[str, str, str, str], tuple[Decimal, int]]


def run(data_dir: Path | str, home: Path, now: datetime) -> tuple[float, Totals, dict]:
    """Run the demo on `data_dir`; return its duration, cost_daily's totals and facts about the lake."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir(exist_ok=True)
    os.environ["FINOPS_WORK_DIR"] = str(home / "work")
    found: dict = {}

    def read(_: object) -> None:
        _, rows = query(data_dir, TOTALS_SQL)
        found["totals"] = {(p, a, b, c): (Decimal(t), n) for p, a, b, c, t, n in rows}
        found["partitions"] = len(list_partitions(data_dir))
        found["verify"] = serving.verify(data_dir)
        found["serving_files"] = len(serving.current_state(data_dir).files())

    start = time.perf_counter()
    run_demo(data_dir, now, then=read)
    return time.perf_counter() - start, found.pop("totals"), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,s3")
    args = parser.parse_args()
    for name in LAKE_ENDPOINT_VARIABLES:  # the S3 lake goes to the sandbox's moto
        os.environ.pop(name, None)
    os.environ["FINOPS_SANDBOX_PORT"] = "0"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="finops-demo-lakes-") as temporary:
        root = Path(temporary)
        for backend in args.backends.split(","):
            data_dir: Path | str = root / "local" / "data" if backend == "local" else "s3://finops-demo-lake/finops"
            seconds, totals, facts = run(data_dir, root / backend, now)
            storage.reset_clients()
            results[backend] = totals
            money = {}
            for (_, _, _, currency), (amount, _) in totals.items():
                money[currency] = money.get(currency, Decimal(0)) + amount
            print(f"{backend:6} demo {seconds:6.1f} s  partitions {facts['partitions']}  serving files {facts['serving_files']}  "
                  f"serving == partitions: {facts['verify'] == {}}  rows {sum(n for _, n in totals.values())}  "
                  f"BilledCost {', '.join(f'{c} {v}' for c, v in sorted(money.items()))}", flush=True)
    if len(results) == 2:
        local, remote = results.values()
        differ = sorted(k for k in set(local) | set(remote) if local.get(k) != remote.get(k))
        print(f"cost_daily groups (provider, account, period, currency): {len(local)} local, {len(remote)} s3; "
              f"{'identical to the cent' if not differ else f'{len(differ)} differ: {differ[:5]}'}")


if __name__ == "__main__":
    main()
