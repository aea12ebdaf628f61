"""Daily cost bar charts, stacked by provider, one chart per currency, as a PNG (plain zlib + struct,
no plotting library) for the Dagster UI's Markdown; the HTML page draws its own in the browser.

A chart only ever holds one currency: the stacked bars add providers' amounts of that currency,
never amounts of two currencies.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Provider colors, from each vendor's palette but far enough apart to tell stacked bars apart (three
# of the four brands are blue); other providers take the fallback colors in order.
FALLBACK_COLORS = ("#2ca58d", "#8e44ad", "#c0392b", "#7f8c8d", "#16a085", "#d35400")


@dataclass(frozen=True)
class Series:
    """Daily amounts of one currency, per provider, over consecutive days."""

    currency: str
    days: list[date]
    providers: list[str]
    amounts: dict[str, dict[date, Decimal]]  # provider -> day -> amount

    def day_total(self, day: date) -> Decimal:
        return sum((self.amounts[p].get(day, Decimal(0)) for p in self.providers), Decimal(0))

    def peak(self) -> Decimal:
        return max((self.day_total(d) for d in self.days), default=Decimal(0))

    def last(self, count: int) -> Series:
        return Series(self.currency, self.days[-count:], self.providers, self.amounts)


def series_by_currency(rows: Sequence[tuple[str, str, date, Decimal]]) -> list[Series]:
    """rows: (provider, currency, day, amount), as in the daily_cost_trend table."""
    by_currency: dict[str, dict[str, dict[date, Decimal]]] = {}
    for provider, currency, day, amount in rows:
        by_currency.setdefault(currency, {}).setdefault(provider, {})[day] = amount
    series = []
    for currency, amounts in sorted(by_currency.items()):
        days = sorted({d for by_day in amounts.values() for d in by_day})
        series.append(Series(currency, days, sorted(amounts), amounts))
    return series


def provider_color(provider: str, providers: Sequence[str]) -> str:
    from finops_pipeline.sources import providers as known_providers

    known = {key: p.color for key, p in known_providers().items()}
    if provider in known:
        return known[provider]
    others = [p for p in sorted(providers) if p not in known]
    return FALLBACK_COLORS[others.index(provider) % len(FALLBACK_COLORS)] if provider in others else FALLBACK_COLORS[0]


def money(value: Decimal | None, currency: str | None = None) -> str:
    """Two decimals with thousands separators, like the terminal report (display.py)."""
    if value is None:
        return "n/a"
    text = f"{value:,.2f}"
    return f"{currency} {text}" if currency else text


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _png(width: int, height: int, pixels: bytearray) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(pixels[y * width * 3 : (y + 1) * width * 3]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def png_bar_chart(series: Series, width: int = 600, height: int = 140) -> bytes:
    """The same stacked bars as a small PNG (no text: the Markdown around it carries the labels)."""
    pixels = bytearray(b"\xff" * (width * height * 3))

    def fill(x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int]) -> None:
        for y in range(max(y0, 0), min(y1, height)):
            start = (y * width + max(x0, 0)) * 3
            end = (y * width + min(x1, width)) * 3
            pixels[start:end] = bytes(rgb) * ((end - start) // 3)

    margin = 4
    plot_h = height - 2 * margin
    peak = series.peak() or Decimal(1)
    grid = _rgb("#dddddd")
    for fraction in (0.0, 0.5, 1.0):
        y = margin + plot_h - int(fraction * plot_h)
        fill(0, min(y, height - 1), width, min(y, height - 1) + 1, grid)
    count = max(len(series.days), 1)
    slot = (width - 2 * margin) / count
    for index, day in enumerate(series.days):
        x0 = margin + int(index * slot + slot * 0.14)
        x1 = margin + int((index + 1) * slot - slot * 0.14)
        base = margin + plot_h
        for provider in series.providers:
            amount = series.amounts[provider].get(day, Decimal(0))
            if amount <= 0:
                continue
            h = int(round(float(amount / peak) * plot_h))
            fill(x0, base - h, max(x1, x0 + 1), base, _rgb(provider_color(provider, series.providers)))
            base -= h
    return _png(width, height, pixels)
