"""Plain-text tables and a trend chart for the terminal (the demo, `query`, `status`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    cells = [[_cell(v)[:max_width] for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], (int, float, Decimal)) or row[i] is None for row in rows) and rows for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    if not rows:
        out.append("(no rows)")
    return "\n".join(out)


def trend_chart(rows: Sequence[tuple[str, str, date, Decimal]], width: int = 40) -> str:
    """rows: (provider, currency, day, amount). One bar per day and currency, stacked by provider."""
    series: dict[str, dict[date, dict[str, Decimal]]] = {}
    for provider, currency, day, amount in rows:
        series.setdefault(currency, {}).setdefault(day, {})[provider] = amount
    out = []
    for currency, days in sorted(series.items()):
        providers = sorted({p for by_provider in days.values() for p in by_provider})
        peak = max((sum(v.values()) for v in days.values()), default=Decimal(0)) or Decimal(1)
        marks = {p: "#=+*"[i % 4] for i, p in enumerate(providers)}
        out.append(f"{currency}   " + "   ".join(f"{marks[p]} {p}" for p in providers))
        for day in sorted(days):
            by_provider = days[day]
            bar = "".join(marks[p] * int(by_provider.get(p, 0) / peak * width) for p in providers)
            out.append(f"{day.isoformat()}  {sum(by_provider.values()):>12,.2f}  {bar}")
    return "\n".join(out)
