"""Insight tables: cost by service and by tag, the month-end forecast, cost anomalies and budgets.

Plain functions over `cost_daily` (DuckDB for the sums, Python for the statistics), no Dagster.
Every amount is a Decimal, per currency: nothing is ever added across currencies. The methods and
their measured accuracy are in docs/insight.md.

- Anomalies, per (provider, account, service, currency) on the daily EffectiveCost of Usage: the
  expected value is the median of the same weekday over the previous 8 weeks (at least 4), the
  scale 1.4826 x the MAD of the residuals of the previous 28 days, taken relative to their expected
  value (so weekday and weekend residuals share one scale) and measured from their median (so a
  trend the baseline lags behind is not a departure); a day is flagged when the residual departs
  by more than 3.5 x scale AND |actual - expected| > max(20, 20 % of expected). Purchase, Credit, Tax and
  Adjustment charges are judged apart: against the same kind of charge about a month before.
  The last 2 complete days (and any day the provider still marks estimated) are `provisional`.
- Month-end forecast, per provider, account and currency on EffectiveCost: the complete days of
  the month so far, plus for each remaining day (today included: today's figures are partial) the
  same weekday's median over the last 4 weeks of Usage, plus the Purchase/Tax/Credit charges that
  recurred in each of the previous months on a day still ahead. The interval is the 10th to 90th
  percentile of the past errors of the same method summed over as many days as remain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from finops_pipeline.catalog import connect, register_views
from finops_pipeline.serving import ServingState

ZERO = Decimal(0)
SCALE = Decimal("0.0000000001")
MONEY = pa.decimal128(38, 10)

# Anomalies
BASELINE_WEEKS = 8
MIN_BASELINE_WEEKS = 4
RESIDUAL_DAYS = 28
MIN_RESIDUALS = 14
MAD_FACTOR = Decimal("1.4826")
THRESHOLD = Decimal("3.5")
FLOOR_AMOUNT = Decimal(20)
FLOOR_SHARE = Decimal("0.2")
PROVISIONAL_DAYS = 2
NON_USAGE = ("Purchase", "Credit", "Tax", "Adjustment")

# Forecast
FORECAST_WEEKS = 4
INTERVAL_DAYS = 56
LOW_QUANTILE, HIGH_QUANTILE = Decimal("0.1"), Decimal("0.9")


def q(value: Decimal) -> Decimal:
    """An amount at the lake's scale (DECIMAL(38,10))."""
    return Decimal(value).quantize(SCALE)


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def quantile(values: Sequence[Decimal], share: Decimal) -> Decimal:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _month_end(day: date) -> date:
    return ((day.replace(day=1) + timedelta(days=32)).replace(day=1)) - timedelta(days=1)


def _connection(data_dir: Path, state: ServingState | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory views over the serving layer: `state`, or the serving layer brought up to date."""
    connection = connect(data_dir)
    register_views(connection, data_dir, temporary=True, state=state)
    return connection


# --- tags --------------------------------------------------------------------------------------------


def normalize_tag_key(key: str) -> str:
    """'user:Cost Center' -> 'cost_center': AWS's 'user:' prefix dropped, lowercase, spaces and '-' as '_'."""
    text = key.strip()
    if text.lower().startswith("user:"):
        text = text[len("user:"):]
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def normalized_tags(tags: str | None) -> dict[str, str]:
    """FOCUS Tags (JSON text) as {normalized key: value}; empty values are no tag. Keys that normalize
    alike keep the first non-empty value in raw-key order, so a row is never counted twice."""
    if not tags:
        return {}
    try:
        raw = json.loads(tags)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    result: dict[str, str] = {}
    for key in sorted(raw, key=str):
        value = raw[key]
        value = "" if value is None else str(value)
        normalized = normalize_tag_key(str(key))
        if value != "" and normalized and normalized not in result:
            result[normalized] = value
    return result


# --- cost by service and by tag ------------------------------------------------------------------------

_GRAINS_SQL = """
    SELECT 'daily' AS grain, ChargePeriodStart::DATE AS period_start, strftime(BillingPeriodStart, '%Y-%m') AS billing_period,
           {keys}, BillingCurrency AS currency, sum(BilledCost) AS billed_cost, sum(EffectiveCost) AS effective_cost
    FROM {source} GROUP BY ALL
    UNION ALL
    SELECT 'billing_period', BillingPeriodStart::DATE, strftime(BillingPeriodStart, '%Y-%m'),
           {keys}, BillingCurrency, sum(BilledCost), sum(EffectiveCost)
    FROM {source} GROUP BY ALL
"""


def cost_by_service(data_dir: Path, state: ServingState | None = None) -> pa.Table:
    """Per grain ('daily' or 'billing_period'), period, provider, service and currency: billed and effective cost."""
    connection = _connection(data_dir, state)
    try:
        sql = _GRAINS_SQL.format(keys="x_Provider AS provider, ServiceName AS service_name, ServiceCategory AS service_category",
                                 source="cost_daily")
        return connection.sql(
            f"SELECT * FROM ({sql}) ORDER BY grain, period_start, provider, currency, effective_cost DESC, service_name"
        ).to_arrow_table()
    finally:
        connection.close()


def _tag_pairs(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    distinct = [t for (t,) in connection.execute("SELECT DISTINCT Tags FROM cost_daily WHERE Tags IS NOT NULL").fetchall()]
    return [(tags, key, value) for tags in distinct for key, value in normalized_tags(tags).items()]


def tag_keys(data_dir: Path, state: ServingState | None = None) -> set[str]:
    """The normalized tag keys found in the lake (in the periods of `state`)."""
    connection = _connection(data_dir, state)
    try:
        return {key for _, key, _ in _tag_pairs(connection)}
    finally:
        connection.close()


def cost_by_tag(data_dir: Path, state: ServingState | None = None, keys: Iterable[str] | None = None) -> pa.Table:
    """Per grain, period, provider, currency, normalized tag key and value: billed and effective cost.

    Every tag key found in the lake (or in `keys`, when given) splits all the cost: the rows without
    that key (or with an empty value) are its `untagged` bucket (tag_value NULL), so each key's rows
    add up to the total.
    """
    connection = _connection(data_dir, state)
    try:
        pairs = _tag_pairs(connection)
        found = sorted({key for _, key, _ in pairs} if keys is None else set(keys))
        connection.register("split_keys", pa.table({"tag_key": pa.array(found, pa.string())}))
        connection.register("tag_pairs", pa.table(
            {"Tags": [p[0] for p in pairs], "tag_key": [p[1] for p in pairs], "tag_value": [p[2] for p in pairs]},
            schema=pa.schema([("Tags", pa.string()), ("tag_key", pa.string()), ("tag_value", pa.string())]),
        ))
        connection.execute("""
            CREATE TEMP VIEW tagged AS
            WITH base AS (SELECT ChargePeriodStart, BillingPeriodStart, x_Provider, BillingCurrency, Tags,
                                 sum(BilledCost) AS BilledCost, sum(EffectiveCost) AS EffectiveCost
                          FROM cost_daily GROUP BY ALL),
                 tag_keys AS (SELECT DISTINCT tag_key FROM split_keys)
            SELECT b.*, k.tag_key, p.tag_value
            FROM base b CROSS JOIN tag_keys k
            LEFT JOIN tag_pairs p ON p.Tags = b.Tags AND p.tag_key = k.tag_key
        """)
        sql = _GRAINS_SQL.format(keys="x_Provider AS provider, tag_key, tag_value", source="tagged")
        return connection.sql(
            f"""SELECT grain, period_start, billing_period, provider, tag_key, tag_value, tag_value IS NULL AS untagged,
                       currency, billed_cost, effective_cost
                FROM ({sql}) ORDER BY grain, period_start, provider, tag_key, currency, untagged, effective_cost DESC, tag_value"""
        ).to_arrow_table()
    finally:
        connection.close()


# --- daily series ------------------------------------------------------------------------------------------


@dataclass
class Series:
    """One (provider, account, service, currency)'s daily EffectiveCost: Usage, and the other charges apart."""

    usage: dict[date, Decimal] = field(default_factory=dict)
    other: dict[tuple[str, date], Decimal] = field(default_factory=dict)  # (charge category, day) -> amount
    estimated: set[date] = field(default_factory=set)
    first: date | None = None

    def add(self, category: str, day: date, amount: Decimal, estimated: bool) -> None:
        if category in NON_USAGE:
            self.other[(category, day)] = self.other.get((category, day), ZERO) + amount
        else:
            self.usage[day] = self.usage.get(day, ZERO) + amount
        if estimated:
            self.estimated.add(day)
        self.first = day if self.first is None else min(self.first, day)


def _daily_rows(connection: duckdb.DuckDBPyConnection, today: date, where: str = "true", params: Mapping[str, Any] | None = None) -> list[tuple]:
    return connection.execute(
        f"""SELECT x_Provider, x_AccountKey, ServiceName, BillingCurrency, ChargeCategory, ChargePeriodStart::DATE AS day,
                   sum(EffectiveCost), bool_or(x_Estimated)
            FROM cost_daily WHERE ChargePeriodStart::DATE < $today AND ({where}) GROUP BY ALL""",
        {"today": today, **(params or {})},
    ).fetchall()


def _series(rows: Iterable[tuple], key_length: int) -> dict[tuple, Series]:
    """Rows (provider, account, service, currency, category, day, amount, estimated) by their first `key_length` keys
    (the currency always kept)."""
    result: dict[tuple, Series] = {}
    for provider, account, service, currency, category, day, amount, estimated in rows:
        key = (provider, account, service)[:key_length] + (currency,)
        result.setdefault(key, Series()).add(category, day, amount, bool(estimated))
    return result


# --- anomalies -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    day: date
    expected: Decimal
    actual: Decimal
    limit: Decimal  # |actual - expected| had to exceed this

    @property
    def impact(self) -> Decimal:
        return self.actual - self.expected


def floor_for(expected: Decimal) -> Decimal:
    return max(FLOOR_AMOUNT, FLOOR_SHARE * abs(expected))


def detect_usage_anomalies(usage: Mapping[date, Decimal], first: date, last: date) -> list[Flag]:
    """The days of [first, last] whose cost departs from the same weekday's median of the 8 weeks before.

    A day without cost inside [first, last] counts as 0. A day needs at least 4 earlier same weekdays
    and 14 earlier residuals to be judged.
    """
    values = {day: usage.get(day, ZERO) for day in _days(first, last)}
    relative: dict[date, Decimal] = {}  # residual / expected: weekday and weekend residuals on one scale
    flags = []
    for day, actual in values.items():
        history = [values[d] for d in (day - timedelta(weeks=k) for k in range(1, BASELINE_WEEKS + 1)) if d >= first]
        if len(history) < MIN_BASELINE_WEEKS:
            continue
        expected = median(history)
        residual = actual - expected
        recent = [relative[d] for d in (day - timedelta(days=n) for n in range(1, RESIDUAL_DAYS + 1)) if d in relative]
        if len(recent) >= MIN_RESIDUALS:
            # Measured from the recent residuals' median, so a trend the 8-week median lags behind is not a departure.
            centre = median(recent)
            scale = MAD_FACTOR * median([abs(r - centre) for r in recent]) * abs(expected)
            limit = max(THRESHOLD * scale, floor_for(expected))
            if abs(residual - centre * abs(expected)) > THRESHOLD * scale and abs(residual) > floor_for(expected):
                flags.append(Flag(day, expected, actual, limit))
        if expected > 0:
            relative[day] = residual / expected
    return flags


def detect_charge_anomalies(charges: Mapping[date, Decimal], first: date, last: date) -> list[Flag]:
    """Purchase/Credit/Tax charges of one kind: each against the same kind 25 to 35 days before (a monthly charge
    recurs there). A charge with none before is one-time (expected 0). Judged only where history reaches back 35 days."""
    flags = []
    for day, actual in sorted(charges.items()):
        if not first + timedelta(days=35) <= day <= last:
            continue
        before = [charges[d] for d in _days(day - timedelta(days=35), day - timedelta(days=25)) if d in charges]
        expected = before[-1] if before else ZERO
        limit = floor_for(expected)
        if abs(actual - expected) > limit:
            flags.append(Flag(day, expected, actual, limit))
    return flags


ANOMALY_SCHEMA = pa.schema([
    ("day", pa.date32()), ("provider", pa.string()), ("account_key", pa.string()), ("service_name", pa.string()),
    ("currency", pa.string()), ("charge_category", pa.string()), ("expected", MONEY), ("actual", MONEY), ("impact", MONEY),
    ("limit", MONEY), ("direction", pa.string()), ("provisional", pa.bool_()), ("reason", pa.string()), ("as_of", pa.date32()),
])


def _reason(category: str, flag: Flag, currency: str) -> str:
    change = f"{'+' if flag.impact >= 0 else '-'}{currency} {abs(flag.impact):,.2f}"
    if category == "Usage":
        return (f"{change}: {currency} {flag.actual:,.2f} against {currency} {flag.expected:,.2f} expected (median of the same weekday, "
                f"8 weeks); limit {currency} {flag.limit:,.2f}")
    if flag.expected == 0:
        return f"one-time {category} of {currency} {flag.actual:,.2f}: no {category} charge about a month before"
    return f"{change}: {category} of {currency} {flag.actual:,.2f} against {currency} {flag.expected:,.2f} a month before"


def _accounts_filter(accounts: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    return ("true", {}) if accounts is None else ("x_AccountKey IN (SELECT unnest($accounts::VARCHAR[]))", {"accounts": list(accounts)})


def anomaly_order(row: Mapping[str, Any]) -> tuple:
    """The order of cost_anomalies: newest day first, then the largest impact."""
    return (-row["day"].toordinal(), -abs(row["impact"]), row["provider"], row["account_key"], row["service_name"])


def cost_anomalies(data_dir: Path, today: date, state: ServingState | None = None, accounts: Sequence[str] | None = None) -> pa.Table:
    """Anomalous days (complete days before today) per provider, account, service, currency and charge kind
    (of the account keys `accounts` only, when given: each account's series are its own)."""
    connection = _connection(data_dir, state)
    try:
        series = _series(_daily_rows(connection, today, *_accounts_filter(accounts)), 3)
    finally:
        connection.close()
    last = today - timedelta(days=1)
    rows = []
    for (provider, account, service, currency), s in series.items():
        assert s.first is not None
        found = [("Usage", f) for f in detect_usage_anomalies(s.usage, s.first, last)] if s.usage else []
        for category in sorted({c for c, _ in s.other}):
            charges = {d: v for (c, d), v in s.other.items() if c == category}
            found += [(category, f) for f in detect_charge_anomalies(charges, s.first, last)]
        for category, flag in found:
            rows.append({
                "day": flag.day, "provider": provider, "account_key": account, "service_name": service, "currency": currency,
                "charge_category": category, "expected": q(flag.expected), "actual": q(flag.actual), "impact": q(flag.impact),
                "limit": q(flag.limit), "direction": "up" if flag.impact > 0 else "down",
                "provisional": flag.day > last - timedelta(days=PROVISIONAL_DAYS) or flag.day in s.estimated,
                "reason": _reason(category, flag, currency), "as_of": today,
            })
    rows.sort(key=anomaly_order)
    return pa.Table.from_pylist(rows, schema=ANOMALY_SCHEMA)


# --- forecast ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    billing_period: str
    days_elapsed: int  # complete days of the month before today
    days_remaining: int  # today included
    month_to_date: Decimal  # every charge of the complete days
    usage_ahead: Decimal
    recurring_ahead: Decimal
    forecast: Decimal
    low: Decimal
    high: Decimal


def _weekday_baseline(usage: Mapping[date, Decimal], first: date, before: date, weekday: int, weeks: int) -> Decimal | None:
    """Median of the last `weeks` days of `weekday` strictly before `before` and from `first` on (missing days are 0)."""
    last = before - timedelta(days=1)
    latest = last - timedelta(days=(last.weekday() - weekday) % 7)
    values = [usage.get(d, ZERO) for d in (latest - timedelta(weeks=k) for k in range(weeks)) if d >= first]
    return median(values) if values else None


def forecast_month(usage: Mapping[date, Decimal], other: Mapping[tuple[str, date], Decimal], first: date, today: date,
                   weeks: int = FORECAST_WEEKS) -> Forecast:
    """Month-end EffectiveCost for today's month. `usage` is daily Usage, `other` the (category, day) charges apart,
    `first` the first day of the series (no cost before it counts as 0)."""
    month_start, month_end = today.replace(day=1), _month_end(today)
    elapsed = [d for d in _days(month_start, today - timedelta(days=1)) if d >= month_start]
    ahead = _days(today, month_end)
    actual = sum((usage.get(d, ZERO) for d in elapsed), ZERO)
    actual += sum((v for (_, d), v in other.items() if month_start <= d < today), ZERO)

    def baseline(day: date, before: date) -> Decimal:
        value = _weekday_baseline(usage, first, before, day.weekday(), weeks)
        return ZERO if value is None else value

    baselines = {wd: baseline(today + timedelta(days=wd), today) for wd in range(7)} if today > first else {wd: ZERO for wd in range(7)}
    usage_ahead = sum((baselines[(d - today).days % 7] for d in ahead), ZERO)

    # Charges apart: a (category, day of month) charge that came in each of the previous months the history
    # covers (at least one), on a day still ahead, and not yet seen this month.
    previous = (month_start - timedelta(days=1)).replace(day=1)
    before_previous = (previous - timedelta(days=1)).replace(day=1)
    seen_now = {c for (c, d) in other if month_start <= d < today}
    recurring = ZERO
    for (category, day), amount in other.items():
        if previous <= day < month_start and day.day >= today.day and category not in seen_now:
            older = [v for (c, d), v in other.items() if c == category and before_previous <= d < previous]
            if older or first >= previous:
                recurring += amount

    # The interval: the same method's past errors, summed over as many days as remain.
    errors: dict[date, Decimal] = {}
    for day in _days(max(first + timedelta(weeks=weeks), today - timedelta(days=INTERVAL_DAYS)), today - timedelta(days=1)):
        errors[day] = usage.get(day, ZERO) - baseline(day, day)
    span = len(ahead)
    ordered = [errors[d] for d in sorted(errors)]
    point = actual + usage_ahead + recurring
    if len(ordered) >= span + 4:
        sums = [sum(ordered[i:i + span], ZERO) for i in range(len(ordered) - span + 1)]
        low_error, high_error = quantile(sums, LOW_QUANTILE), quantile(sums, HIGH_QUANTILE)
    elif len(ordered) >= 7:
        scale = MAD_FACTOR * median([abs(e - median(ordered)) for e in ordered]) * Decimal(span).sqrt()
        low_error, high_error = -Decimal("1.2816") * scale, Decimal("1.2816") * scale
    else:  # too little history to say: the whole remaining usage either way
        low_error, high_error = -usage_ahead, usage_ahead
    return Forecast(
        billing_period=today.strftime("%Y-%m"), days_elapsed=len(elapsed), days_remaining=span, month_to_date=actual,
        usage_ahead=usage_ahead, recurring_ahead=recurring, forecast=point,
        low=point + min(low_error, ZERO), high=point + max(high_error, ZERO),
    )


FORECAST_SCHEMA = pa.schema([
    ("provider", pa.string()), ("account_key", pa.string()), ("currency", pa.string()), ("billing_period", pa.string()),
    ("days_elapsed", pa.int32()), ("days_remaining", pa.int32()), ("month_to_date", MONEY), ("usage_ahead", MONEY),
    ("recurring_ahead", MONEY), ("forecast", MONEY), ("forecast_low", MONEY), ("forecast_high", MONEY), ("as_of", pa.date32()),
])


def _forecast_row(f: Forecast) -> dict[str, Any]:
    return {
        "billing_period": f.billing_period, "days_elapsed": f.days_elapsed, "days_remaining": f.days_remaining,
        "month_to_date": q(f.month_to_date), "usage_ahead": q(f.usage_ahead), "recurring_ahead": q(f.recurring_ahead),
        "forecast": q(f.forecast), "forecast_low": q(f.low), "forecast_high": q(f.high),
    }


def cost_forecast(data_dir: Path, today: date, state: ServingState | None = None, accounts: Sequence[str] | None = None) -> pa.Table:
    """Month-end EffectiveCost forecast per provider, account and currency, for today's billing period
    (of the account keys `accounts` only, when given).

    Only series with cost in the last 35 days are forecast (an account that stopped is not projected)."""
    connection = _connection(data_dir, state)
    try:
        series = _series(_daily_rows(connection, today, *_accounts_filter(accounts)), 2)
    finally:
        connection.close()
    rows = []
    for (provider, account, currency), s in sorted(series.items()):
        days = set(s.usage) | {d for _, d in s.other}
        if not days or max(days) < today - timedelta(days=35):
            continue
        assert s.first is not None
        forecast = forecast_month(s.usage, s.other, s.first, today)
        rows.append({"provider": provider, "account_key": account, "currency": currency, **_forecast_row(forecast), "as_of": today})
    return pa.Table.from_pylist(rows, schema=FORECAST_SCHEMA)


# --- budgets ---------------------------------------------------------------------------------------------------

BUDGET_SCHEMA = pa.schema([
    ("budget", pa.string()), ("scope", pa.string()), ("currency", pa.string()), ("billing_period", pa.string()),
    ("amount", MONEY), ("actual", MONEY), ("forecast", MONEY), ("forecast_low", MONEY), ("forecast_high", MONEY),
    ("actual_pct", pa.float64()), ("forecast_pct", pa.float64()), ("status", pa.string()),
    ("other_currencies", pa.list_(pa.string())), ("as_of", pa.date32()),
])


def budget_status(data_dir: Path, budgets: Sequence[Any], today: date, state: ServingState | None = None) -> pa.Table:
    """Per budget: this month's EffectiveCost in its scope and currency (actual, through today) and the month-end
    forecast, against the amount. status: OVER (actual above the amount), FORECAST_OVER, or OK."""
    connection = _connection(data_dir, state)
    rows = []
    try:
        for budget in budgets:
            scope = budget.scope
            clauses, params = [], {}
            for column, value, name in (("x_Provider", scope.provider, "provider"), ("x_AccountKey", scope.account, "account"),
                                        ("ServiceName", scope.service, "service")):
                if value is not None:
                    clauses.append(f"{column} = ${name}")
                    params[name] = value
            where = " AND ".join(clauses) or "true"
            data = connection.execute(
                f"""SELECT BillingCurrency, ChargeCategory, ChargePeriodStart::DATE, Tags, sum(EffectiveCost)
                    FROM cost_daily WHERE ChargePeriodStart::DATE <= $today AND {where} GROUP BY ALL""",
                {"today": today, **params},
            ).fetchall()
            wanted = dict(scope.tags or {})
            usage: dict[date, Decimal] = {}
            other: dict[tuple[str, date], Decimal] = {}
            currencies, partial_today = set(), ZERO
            for currency, category, day, tags, amount in data:
                if wanted:
                    have = normalized_tags(tags)
                    if any(have.get(normalize_tag_key(k)) != v for k, v in wanted.items()):
                        continue
                if currency != budget.currency:
                    currencies.add(currency)
                    continue
                if day == today:
                    partial_today += amount
                elif category in NON_USAGE:
                    other[(category, day)] = other.get((category, day), ZERO) + amount
                else:
                    usage[day] = usage.get(day, ZERO) + amount
            days = set(usage) | {d for _, d in other}
            if days:
                forecast = forecast_month(usage, other, min(days), today)
                actual = forecast.month_to_date + partial_today
                point, low, high = (max(v, actual) for v in (forecast.forecast, forecast.low, forecast.high))
            else:
                actual = point = low = high = partial_today
            amount = budget.amount
            status = "OVER" if actual > amount else "FORECAST_OVER" if point > amount else "OK"
            rows.append({
                "budget": budget.name, "scope": scope.describe(), "currency": budget.currency, "billing_period": today.strftime("%Y-%m"),
                "amount": q(amount), "actual": q(actual), "forecast": q(point), "forecast_low": q(low), "forecast_high": q(high),
                "actual_pct": round(float(actual / amount * 100), 1), "forecast_pct": round(float(point / amount * 100), 1),
                "status": status, "other_currencies": sorted(currencies), "as_of": today,
            })
    finally:
        connection.close()
    return pa.Table.from_pylist(rows, schema=BUDGET_SCHEMA)


# --- what the checks say ---------------------------------------------------------------------------------------

RECENT_ANOMALY_DAYS = 7


@dataclass(frozen=True)
class Verdict:
    passed: bool
    severity: str  # "WARN" or "ERROR" (meaningful when not passed)
    description: str
    details: list[dict[str, Any]]


def where_to_look(anomaly: Mapping[str, Any]) -> str:
    """The query that shows what is behind an anomaly: the service's rows around the day, by sub account, region and resource."""
    def text(value: Any) -> str:
        return "'" + str(value).replace("'", "''") + "'"

    day = anomaly["day"]
    return (
        "SELECT ChargePeriodStart::DATE AS day, ChargeCategory, SubAccountId, RegionId, ResourceId, sum(EffectiveCost) AS cost "
        f"FROM cost_daily WHERE x_Provider = {text(anomaly['provider'])} AND x_AccountKey = {text(anomaly['account_key'])} "
        f"AND ServiceName = {text(anomaly['service_name'])} AND BillingCurrency = {text(anomaly['currency'])} "
        f"AND ChargePeriodStart::DATE BETWEEN DATE '{day - timedelta(days=7)}' AND DATE '{day}' GROUP BY ALL ORDER BY day, cost DESC"
    )


def anomaly_verdict(anomalies: Sequence[Mapping[str, Any]], today: date, days: int = RECENT_ANOMALY_DAYS) -> Verdict:
    """WARN with the anomalies of the last `days` complete days, their impact per currency and where to look."""
    recent = [a for a in anomalies if today - timedelta(days=days) <= a["day"] < today]
    if not recent:
        return Verdict(True, "WARN", f"No cost anomaly in the {days} days before {today}.", [])
    impact: dict[str, Decimal] = {}
    for a in recent:
        impact[a["currency"]] = impact.get(a["currency"], ZERO) + a["impact"]
    total = ", ".join(f"{c} {v:+,.2f}" for c, v in sorted(impact.items()))
    details = [
        {"day": str(a["day"]), "provider": a["provider"], "account_key": a["account_key"], "service_name": a["service_name"],
         "charge_category": a["charge_category"], "currency": a["currency"], "expected": str(a["expected"]), "actual": str(a["actual"]),
         "impact": str(a["impact"]), "provisional": a["provisional"], "reason": a["reason"], "where_to_look": where_to_look(a)}
        for a in sorted(recent, key=lambda a: -abs(a["impact"]))
    ]
    return Verdict(False, "WARN", f"{len(recent)} cost anomal{'y' if len(recent) == 1 else 'ies'} in the {days} days before {today} "
                   f"(impact {total}).", details)


def budget_verdict(budgets: Sequence[Mapping[str, Any]]) -> Verdict:
    """ERROR when a budget's actual passed its amount, WARN when only its forecast does."""
    over = [b for b in budgets if b["status"] == "OVER"]
    heading = [b for b in budgets if b["status"] == "FORECAST_OVER"]
    details = [
        {"budget": b["budget"], "scope": b["scope"], "status": b["status"],
         "amount": f"{b['currency']} {b['amount']:,.2f}", "actual": f"{b['currency']} {b['actual']:,.2f}",
         "forecast": f"{b['currency']} {b['forecast']:,.2f}", "exact": {k: str(b[k]) for k in ("amount", "actual", "forecast")}}
        for b in over + heading
    ]
    if over:
        return Verdict(False, "ERROR", "Over budget: " + "; ".join(
            f"{b['budget']} {b['currency']} {b['actual']:,.2f} of {b['amount']:,.2f}" for b in over), details)
    if heading:
        return Verdict(False, "WARN", "Forecast over budget: " + "; ".join(
            f"{b['budget']} {b['currency']} {b['forecast']:,.2f} forecast of {b['amount']:,.2f}" for b in heading), details)
    return Verdict(True, "WARN", f"{len(budgets)} budget(s) within their amount, actual and forecast.", [])
