"""The whole demo on a local lake, then on S3 (the AWS stand-in's moto server), with the same clock and the
same synthetic billing: how long each takes, and whether cost_daily in the bucket reconciles with the
local lake to the cent, per provider, account, billing period and currency (a script, not a test).

    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/demo_object_storage.py
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/demo_object_storage.py --backends s3   # the S3 run only

Each run is its own process, with its own Dagster home and work directory under a temporary directory.
The S3 lake lives in moto's memory, so it is read (through `finops-pipeline`'s catalog connection)
before the stand-ins stop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))

from finops_pipeline import serving  # noqa: E402
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


def one(backend: str, root: Path, now: datetime) -> None:
    """One demo run (in this process); prints its figures as one JSON line."""
    for name in LAKE_ENDPOINT_VARIABLES:  # the S3 lake goes to the sandbox's moto
        os.environ.pop(name, None)
    os.environ["FINOPS_SANDBOX_PORT"] = "0"
    data_dir: Path | str = root / "data" if backend == "local" else "s3://finops-demo-lake/finops"
    seconds, totals, facts = run(data_dir, root, now)
    print(json.dumps({"seconds": seconds, "facts": facts, "totals": [[*k, str(v), n] for k, (v, n) in totals.items()]}, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backend,directory,now: one run, in a child process
    args = parser.parse_args()
    if args.one:
        backend, directory, now = args.one.split(",")
        one(backend, Path(directory), datetime.fromisoformat(now))
        return
    now = datetime.now(timezone.utc).replace(microsecond=0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="finops-demo-lakes-") as temporary:
        for backend in args.backends.split(","):
            child = subprocess.run([sys.executable, __file__, "--one", f"{backend},{Path(temporary) / backend},{now.isoformat()}"],
                                   capture_output=True, text=True, check=True)
            found = json.loads(child.stdout.strip().splitlines()[-1])
            totals: Totals = {tuple(t[:4]): (Decimal(t[4]), t[5]) for t in found["totals"]}  # type: ignore[misc]
            facts, seconds = found["facts"], found["seconds"]
            results[backend] = totals
            money: dict[str, Decimal] = {}
            for (_, _, _, currency), (amount, _) in totals.items():
                money[currency] = money.get(currency, Decimal(0)) + amount
            failed = [line.strip() for line in child.stdout.splitlines() if "failed as planned" in line]
            print(f"{backend:6} demo {seconds:6.1f} s  partitions {facts['partitions']}  serving files {facts['serving_files']}  "
                  f"serving == partitions: {facts['verify'] == {}}  rows {sum(n for _, n in totals.values())}  "
                  f"BilledCost {', '.join(f'{c} {v}' for c, v in sorted(money.items()))}\n       {' '.join(failed)}", flush=True)
    if len(results) == 2:
        local, remote = results.values()
        differ = sorted(k for k in set(local) | set(remote) if local.get(k) != remote.get(k))
        print(f"cost_daily groups (provider, account, period, currency): {len(local)} local, {len(remote)} s3; "
              f"{'identical to the cent' if not differ else f'{len(differ)} differ: {differ[:5]}'}")


if __name__ == "__main__":
    main()
