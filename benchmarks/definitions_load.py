"""What loading the Dagster definitions costs, next to importing dagster itself (a script, not a test).

Every code server start, sensor tick and run worker loads the definitions, so they should cost little
more than `import dagster`. Each figure is the median wall time of fresh interpreters (default 5),
with FINOPS_CONFIG at finops.example.yaml (one account of every source).

    python benchmarks/definitions_load.py
    python benchmarks/definitions_load.py --before /tmp/old    # also a checkout of an older commit
                                                               # (af4ea53: `import finops_pipeline.definitions`)
        [--before-python /path/to/old/venv/bin/python]         # a venv with that commit's dependencies

Then the heaviest imports of one load (`python -X importtime`), cumulative.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD = "from finops_pipeline.definitions import load_definitions; load_definitions()"
LOAD_BEFORE = "import finops_pipeline.definitions"  # af4ea53 built its Definitions at import
SDKS = ("boto3", "botocore", "google.cloud.bigquery", "azure.mgmt", "azure.identity", "pydo", "dagster_aws", "pandas")


def median_seconds(code: str, env: dict[str, str], runs: int, python: str = sys.executable) -> float:
    """Median wall time of `python -c code` in fresh interpreters (one warm-up run first, not counted)."""
    times = []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([python, "-c", code], env=env, check=True, capture_output=True)
        if attempt:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def heaviest_imports(code: str, env: dict[str, str], count: int) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the top-level imports that cost most, from -X importtime."""
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, check=True, capture_output=True, text=True)
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # imported by our code or the first level below it
            rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", default=str(REPO / "finops.example.yaml"), help="the registry (default: one account per source)")
    parser.add_argument("--before", type=Path, help="a checkout of an older commit to measure the same way")
    parser.add_argument("--before-python", default=sys.executable, help="the interpreter for --before (default: this one)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    env = {**os.environ, "FINOPS_CONFIG": str(Path(args.config).absolute()), "PYTHONPATH": str(REPO)}
    print(f"{sys.executable}, FINOPS_CONFIG={env['FINOPS_CONFIG']}, median of {args.runs} fresh interpreters")
    bare = median_seconds("pass", env, args.runs)
    dagster = median_seconds("import dagster", env, args.runs)
    definitions = median_seconds(LOAD, env, args.runs)
    print(f"  python -c pass                 {bare:6.2f} s")
    print(f"  import dagster                 {dagster:6.2f} s")
    print(f"  load the definitions           {definitions:6.2f} s   (+{definitions - dagster:.2f} s over import dagster)")
    if args.before:
        before_env = {**env, "PYTHONPATH": str(args.before.absolute())}
        before_dagster = median_seconds("import dagster", before_env, args.runs, args.before_python)
        before = median_seconds(LOAD_BEFORE, before_env, args.runs, args.before_python)
        print(f"before: {args.before} with {args.before_python}")
        print(f"  import dagster                 {before_dagster:6.2f} s")
        print(f"  load the definitions           {before:6.2f} s   (+{before - before_dagster:.2f} s over import dagster)")

    probe = LOAD + f"; import sys; print(','.join(m for m in {SDKS!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True).stdout.strip()
    print(f"\nprovider SDKs imported by the load: {loaded or 'none'}")
    print("\nheaviest imports of one load (cumulative, -X importtime):")
    for seconds, name in heaviest_imports(LOAD, env, args.top):
        print(f"  {seconds:6.3f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
