"""The sources the pipeline can read, found by looking, not listed by hand.

Every provider source lives in its own folder, `finops_pipeline/defs/<provider>/<source>/`, and says
what it is in that folder's `source.py` (a `SOURCE = Source(...)`): its settings model, the
knowledge base's cause and fix for each kind of "no data", how to read its errors, and how far back
it can serve. The core (registry, status, diagnosis, dashboard) asks this module, so it never
branches on a provider. Adding a source is adding its folder.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finops_pipeline.config import SourceSettings
    from finops_pipeline.diagnosis import Advice, Diagnosis


@dataclass(frozen=True)
class Provider:
    """A cloud provider as people and FOCUS name it."""

    key: str  # our key: the `provider` field in finops.yaml and the x_Provider column
    label: str  # what the dashboard and the CLI show ("Azure")
    focus_name: str  # FOCUS ProviderName / PublisherName ("Microsoft")
    invoice_issuer: str  # FOCUS InvoiceIssuerName for first-party billing
    color: str  # the dashboard's color for this provider


@dataclass(frozen=True)
class Source:
    """One way of reading one provider's billing (e.g. AWS CUR), as the core needs to know it."""

    provider: Provider
    name: str  # the `source` field in finops.yaml and the x_Source column
    title: str
    settings: type[SourceSettings]  # the Pydantic model of an account's settings (config.SourceSettings subclass)
    no_data: Advice  # 48 h after connection, nothing pulled and no provider error said why
    empty_pull: Advice  # a pull succeeded and the provider answered with no costs
    classify: Callable[[BaseException, str], Diagnosis | None]  # provider errors -> diagnosis (imports its SDK lazily)
    history_months: int | None = None  # how many months back the source can serve; None: as far as the export goes
    default: bool = False  # read by an account of this provider that names no `source` (registries older than its second source)

    @property
    def id(self) -> str:
        return f"{self.provider.key}_{self.name}"


@cache
def all_sources() -> tuple[Source, ...]:
    """Every `defs/<provider>/<source>/source.py`, in a stable order."""
    import finops_pipeline.defs as defs_root

    found = []
    for provider in sorted(pkgutil.iter_modules(defs_root.__path__), key=lambda m: m.name):
        if not provider.ispkg:
            continue
        package = importlib.import_module(f"{defs_root.__name__}.{provider.name}")
        for source in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if source.ispkg and _has_module(f"{package.__name__}.{source.name}", "source"):
                found.append(importlib.import_module(f"{package.__name__}.{source.name}.source").SOURCE)
    return tuple(found)


def _has_module(package_name: str, module: str) -> bool:
    package = importlib.import_module(package_name)
    return any(m.name == module for m in pkgutil.iter_modules(package.__path__))


def get_source(provider: str, source: str) -> Source:
    for candidate in all_sources():
        if candidate.provider.key == provider and candidate.name == source:
            return candidate
    raise KeyError(f"no source {provider}/{source}")


def providers() -> dict[str, Provider]:
    """Provider key -> Provider, for every provider with at least one source."""
    return {s.provider.key: s.provider for s in all_sources()}
