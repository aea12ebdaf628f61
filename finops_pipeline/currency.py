"""An optional reporting currency: costs converted beside, never instead of, their billed amounts.

FOCUS has no exchange-rate column, and amounts of two currencies are never added. When finops.yaml
sets `reporting_currency`, the `cost_in_reporting_currency` table gives every (day, provider, account,
billing currency) its amounts converted, with the rate, its date and where it came from:

- the provider's own rate first: GCP's `currency_conversion_rate` (USD to the billing currency) when
  converting between USD and that billing currency;
- else the European Central Bank's euro reference rates, from a CSV the user drops in
  `<data>/rates/` (`eurofxref-hist.csv`, all days since 1999, or `eurofxref.csv`, the latest day;
  both at https://www.ecb.europa.eu/stats/eurofxref/), the latest published day on or before the
  cost's day, at most `MAX_RATE_AGE_DAYS` before it;
- else no conversion: the converted amounts are NULL and `rate_source` says `missing`.

Only the converted columns may be summed across currencies.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from finops_pipeline.serving import ServingState

RATE_FILES = ("eurofxref-hist.csv", "eurofxref.csv")
MAX_RATE_AGE_DAYS = 7  # weekends and TARGET holidays have no fixing; a week covers every gap
_SCALE = Decimal(1).scaleb(-10)
MONEY = pa.decimal128(38, 10)

SCHEMA = pa.schema([
    ("day", pa.date32()),
    ("provider", pa.string()),
    ("account_key", pa.string()),
    ("billing_currency", pa.string()),
    ("billed_cost", MONEY),
    ("effective_cost", MONEY),
    ("reporting_currency", pa.string()),
    ("rate", pa.decimal128(38, 18)),
    ("rate_date", pa.date32()),
    ("rate_source", pa.string()),
    ("billed_cost_reporting", MONEY),
    ("effective_cost_reporting", MONEY),
])


class RateFileError(ValueError):
    """The rate file in <data>/rates is not the ECB's CSV format."""


@dataclass(frozen=True)
class EcbRates:
    """Euro reference rates: currency -> {day: units of that currency per 1 EUR}."""

    by_currency: dict[str, dict[date, Decimal]]
    path: Path

    def per_euro(self, currency: str, day: date) -> tuple[Decimal, date] | None:
        if currency == "EUR":
            return Decimal(1), day
        days = self.by_currency.get(currency)
        if not days:
            return None
        for back in range(MAX_RATE_AGE_DAYS + 1):
            fixing = day - timedelta(days=back)
            if fixing in days:
                return days[fixing], fixing
        return None

    def rate(self, source: str, target: str, day: date) -> tuple[Decimal, date] | None:
        """Units of `target` per unit of `source` on `day` (through the euro), and the older fixing's date."""
        a, b = self.per_euro(source, day), self.per_euro(target, day)
        if a is None or b is None:
            return None
        return b[0] / a[0], min(a[1], b[1])


def read_ecb_csv(path: Path) -> EcbRates:
    """Both ECB layouts: a header `Date,USD,JPY,...` (values may be N/A) and one row per day."""
    by_currency: dict[str, dict[date, Decimal]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = [h.strip() for h in next(rows, [])]
        if not header or header[0] != "Date":
            raise RateFileError(f"{path}: not the ECB reference-rate CSV (its first column must be 'Date', got {header[:1]})")
        for line_number, row in enumerate(rows, start=2):
            if not row or not row[0].strip():
                continue
            try:
                day = datetime.strptime(row[0].strip(), "%d %B %Y").date() if not row[0].strip()[:4].isdigit() \
                    else date.fromisoformat(row[0].strip())
            except ValueError as exc:
                raise RateFileError(f"{path}, line {line_number}: {row[0]!r} is not a date") from exc
            for currency, value in zip(header[1:], row[1:]):
                value = value.strip()
                if not currency or not value or value == "N/A":
                    continue
                try:
                    by_currency.setdefault(currency, {})[day] = Decimal(value)
                except InvalidOperation as exc:
                    raise RateFileError(f"{path}, line {line_number}: {currency} rate {value!r} is not a number") from exc
    return EcbRates(by_currency, path)


def load_rates(data_dir: Path) -> EcbRates | None:
    """The ECB rate file under `<data>/rates/` (for a remote lake, in the local work directory)."""
    from finops_pipeline.storage import work_dir

    for name in RATE_FILES:
        path = work_dir(data_dir) / "rates" / name
        if path.is_file():
            return read_ecb_csv(path)
    return None


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(_SCALE, rounding=ROUND_HALF_EVEN)


def cost_in_reporting_currency(data_dir: Path, reporting_currency: str | None, state: ServingState | None = None) -> pa.Table:
    """Every (day, provider, account, billing currency) with its amounts converted; empty without a reporting currency."""
    if not reporting_currency:
        return SCHEMA.empty_table()
    from finops_pipeline.marts import _connection  # the marts' in-memory catalog over the lake

    connection = _connection(data_dir, state)
    try:
        groups = connection.execute(
            """SELECT ChargePeriodStart::DATE, x_Provider, x_AccountKey, BillingCurrency,
                      sum(BilledCost), sum(EffectiveCost),
                      min(x_CurrencyConversionRate), max(x_CurrencyConversionRate), count(x_CurrencyConversionRate), count(*)
               FROM cost_daily GROUP BY ALL ORDER BY 1, 2, 3, 4"""
        ).fetchall()
    finally:
        connection.close()
    ecb = load_rates(data_dir)
    rows = []
    for day, provider, account, currency, billed, effective, low, high, with_rate, count in groups:
        rate, rate_date, source = _rate(currency, reporting_currency, day, low, high, with_rate == count, ecb)
        rows.append({
            "day": day, "provider": provider, "account_key": account, "billing_currency": currency,
            "billed_cost": billed, "effective_cost": effective, "reporting_currency": reporting_currency,
            "rate": rate, "rate_date": rate_date, "rate_source": source,
            "billed_cost_reporting": convert(billed, rate) if rate is not None else None,
            "effective_cost_reporting": convert(effective, rate) if rate is not None else None,
        })
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _rate(currency: str, target: str, day: date, low: Decimal | None, high: Decimal | None, every_row: bool,
          ecb: EcbRates | None) -> tuple[Decimal | None, date | None, str]:
    if currency == target:
        return Decimal(1), day, "identity"
    # The provider's rate (GCP: units of the billing currency per USD) converts that billing currency to
    # USD, when every row of the day carries the same one.
    if target == "USD" and every_row and low is not None and low == high and low > 0:
        return (Decimal(1) / low).quantize(Decimal(1).scaleb(-18), rounding=ROUND_HALF_EVEN), day, "provider"
    if ecb is not None:
        found = ecb.rate(currency, target, day)
        if found is not None:
            rate, fixing = found
            return rate.quantize(Decimal(1).scaleb(-18), rounding=ROUND_HALF_EVEN), fixing, f"ECB ({ecb.path.name})"
    return None, None, "missing"
