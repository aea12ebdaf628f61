"""The one resource every asset shares: where the registry and the data live, and what time it is."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from dagster import ConfigurableResource

from finops_pipeline.config import FinopsConfig, config_path, data_dir, load_config
from finops_pipeline.storage import resolve


class FinopsResource(ConfigurableResource):
    """Paths default to FINOPS_CONFIG / FINOPS_DATA_DIR, read when a run starts (not when code loads).

    `now` pins the clock (ISO 8601), which is how tests drive the 48-hour rule; leave it unset in
    production.
    """

    config_file: str | None = None
    data_dir: str | None = None
    now: str | None = None

    def load_config(self) -> FinopsConfig:
        return load_config(Path(self.config_file) if self.config_file else config_path())

    def data_path(self) -> Path | str:
        """The lake's location: an absolute Path, or an object-storage URL (a string)."""
        return resolve(self.data_dir) if self.data_dir else data_dir()

    def current_time(self) -> datetime:
        if self.now:
            pinned = datetime.fromisoformat(self.now.replace("Z", "+00:00"))
            return pinned if pinned.tzinfo else pinned.replace(tzinfo=timezone.utc)
        return datetime.now(timezone.utc)
