"""How well the insight methods hold up (a script, not a test): anomalies on synthetic series, the forecast back-tested.

1. Anomalies: `--series` (default 200) synthetic series of one year each: a level between 30 and 3,000 a
   day, a weekly shape (weekends 40 to 90 % of a weekday), slow growth, 3 to 12 % day-to-day noise, a
   monthly Purchase of 5 to 40 days of spend on a fixed day of the month, and 2 to 6 spikes per series
   (the day's Usage multiplied by 1.6 to 4) at random days after the first 10 weeks. finops_pipeline's
   detector (insight.detect_usage_anomalies on Usage, detect_charge_anomalies on the Purchases apart) is
   scored on the days after the first 8 weeks: recall (spikes found), precision (flags that are
   spikes), false alarms per series-year. A rolling 28-day mean/std z > 3 on the same Usage series is
   printed beside it for comparison.
2. Forecast: the demo's synthetic billing generator (finops_sandbox.synthetic.daily_charges with the
   AWS demo's accounts and services) for 15 months; the month-end EffectiveCost forecast of each
   account made on day 7, 14 and 21 of every month with at least 8 weeks of history before it,
   against the month's actual total: mean absolute percentage error, and how often the actual fell
   inside the 10-90 % interval.

    PYTHONPATH=.:sandbox python benchmarks/anomaly_eval.py [--series 200] [--seed 14]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "sandbox")]

from finops_pipeline.insight import detect_charge_anomalies, detect_usage_anomalies, forecast_month  # noqa: E402

START = date(2025, 1, 1)
DAYS = 365
EVAL_FROM = 56  # days: what the detector needs before it judges (4 weeks of baseline + 14 residuals), rounded up
SPIKES_FROM = 70


def make_series(rng: random.Random) -> tuple[dict[date, Decimal], dict[date, Decimal], set[date]]:
    level = 10 ** rng.uniform(1.5, 3.5)
    weekend = rng.uniform(0.4, 0.9)
    noise = rng.uniform(0.03, 0.12)
    growth = rng.uniform(-0.0005, 0.002)
    purchase_day = rng.randint(1, 28)
    purchase = Decimal(str(round(level * rng.uniform(5, 40), 2)))
    spikes = set(rng.sample(range(SPIKES_FROM, DAYS), rng.randint(2, 6)))
    usage, purchases, truth = {}, {}, set()
    for n in range(DAYS):
        day = START + timedelta(days=n)
        value = level * (1 if day.weekday() < 5 else weekend) * (1 + growth * n) * max(0.0, rng.gauss(1, noise))
        if n in spikes:
            value *= rng.uniform(1.6, 4)
            truth.add(day)
        usage[day] = Decimal(str(round(value, 2)))
        if day.day == purchase_day:
            purchases[day] = purchase
    return usage, purchases, truth


def zscore_flags(usage: dict[date, Decimal], window: int = 28, z: float = 3) -> set[date]:
    days = sorted(usage)
    values = [float(usage[d]) for d in days]
    flags = set()
    for i in range(window, len(days)):
        past = values[i - window:i]
        mean, sd = statistics.fmean(past), statistics.pstdev(past)
        if sd > 0 and abs(values[i] - mean) > z * sd:
            flags.add(days[i])
    return flags


def score(name: str, found: int, flagged: int, spikes: int, series: int) -> None:
    recall = found / spikes if spikes else float("nan")
    precision = found / flagged if flagged else float("nan")
    false_alarms = (flagged - found) / series * 365 / (DAYS - EVAL_FROM)
    print(f"  {name:<44} recall {recall:.3f}  precision {precision:.3f}  false alarms per series-year {false_alarms:.2f}"
          f"  ({found} of {spikes} spikes, {flagged} flags)")


def evaluate_anomalies(series: int, seed: int) -> None:
    rng = random.Random(seed)
    started = time.perf_counter()
    ours = [0, 0]  # found, flagged
    purchases_flagged = 0
    naive = [0, 0]
    spikes = 0
    first_judged = START + timedelta(days=EVAL_FROM)
    for _ in range(series):
        usage, purchases, truth = make_series(rng)
        last = START + timedelta(days=DAYS - 1)
        flags = {f.day for f in detect_usage_anomalies(usage, START, last) if f.day >= first_judged}
        purchases_flagged += sum(1 for f in detect_charge_anomalies(purchases, START, last) if f.day >= first_judged)
        z = {d for d in zscore_flags({d: v + purchases.get(d, Decimal(0)) for d, v in usage.items()}) if d >= first_judged}
        spikes += len(truth)
        ours[0] += len(flags & truth)
        ours[1] += len(flags)
        naive[0] += len(z & truth)
        naive[1] += len(z)
    print(f"Anomalies: {series} series x {DAYS} days, {spikes} injected spikes, judged from day {EVAL_FROM} "
          f"({time.perf_counter() - started:.1f} s)")
    score("same-weekday median, 3.5 x MAD and floor", ours[0], ours[1], spikes, series)
    print(f"  {'':<44} monthly Purchases flagged (all false alarms): {purchases_flagged}")
    score("rolling 28-day mean/std z > 3 (purchases in)", naive[0], naive[1], spikes, series)


def evaluate_forecast(months: int = 15) -> None:
    from finops_sandbox.aws import DEMO_SERVICES
    from finops_sandbox.synthetic import daily_charges

    accounts = {
        "aws-acme-org": [("111111111111", "acme-payer"), ("222222222222", "acme-production"), ("333333333333", "acme-staging")],
        "aws-data-platform": [("444444444444", "data-platform"), ("777777777777", "analytics")],
    }
    start = date(2025, 1, 1)
    end = date(start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1)
    series: dict[str, dict[date, Decimal]] = {}
    for key, linked in accounts.items():
        daily: dict[date, Decimal] = {}
        for charge in daily_charges(f"demo-{key}", start, (end - start).days, linked, DEMO_SERVICES):
            daily[charge.day] = daily.get(charge.day, Decimal(0)) + charge.amortized
        series[key] = daily
    print(f"\nForecast back-test: the demo's synthetic billing ({len(accounts)} AWS accounts, {(end - start).days} days), "
          "month-end EffectiveCost")
    for weeks in (4, 8):
        print(f"  same-weekday median of the last {weeks} weeks:")
        for at in (7, 14, 21):
            errors, inside = [], 0
            for daily in series.values():
                month = date(start.year, start.month, 1)
                while month < end:
                    today = month + timedelta(days=at)
                    month_end = (month + timedelta(days=32)).replace(day=1)
                    if (today - start).days >= 56 and month_end <= end:
                        history = {d: v for d, v in daily.items() if d < today}
                        forecast = forecast_month(history, {}, start, today, weeks=weeks)
                        actual = sum(v for d, v in daily.items() if month <= d < month_end)
                        errors.append(abs(forecast.forecast - actual) / actual)
                        inside += forecast.low <= actual <= forecast.high
                    month = month_end
            mape = float(sum(errors) / len(errors)) * 100
            print(f"    made on day {at:>2}: MAPE {mape:.2f} % over {len(errors)} account-months, worst {float(max(errors)) * 100:.2f} %, "
                  f"actual inside the 10-90 % interval {inside}/{len(errors)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    evaluate_anomalies(args.series, args.seed)
    evaluate_forecast()


if __name__ == "__main__":
    main()
