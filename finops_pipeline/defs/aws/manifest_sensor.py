"""A sensor on S3 export deliveries (CUR, FOCUS Data Exports): when a month's manifest appears or is rewritten,
refresh that account and month. The cursor, run requests, time budget and errors are the shared
finops_pipeline.delivery_sensor; this module only says how to look at S3.

It watches manifests, not data files: AWS writes the manifest after the data, and a redelivery
rewrites the same manifest key, so the token is each manifest's LastModified and ETag (a key-name
cursor would miss every redelivery). Each tick stats only the open and the previous billing period's
manifest key per account, never a whole report prefix.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from finops_pipeline.config import Account
from finops_pipeline.delivery_sensor import Delivery, Watched, delivery_sensor, watched_periods

__all__ = ["cur_manifest_sensor", "focus_manifest_sensor", "watched_periods"]


def _look(source: str, manifest_key: Callable[[Account, str], str]) -> Callable[[Account, list[str], float], list[Delivery]]:
    def look(account: Account, periods: list[str], seconds: float) -> list[Delivery]:
        from finops_pipeline.defs.aws.cur.pull import open_store
        from finops_pipeline.http_budget import Deadline

        store = open_store(account, Deadline(seconds))
        # The prefix is the manifest key itself, so each look lists one object, never a report prefix.
        found = [(period, store.stat(manifest_key(account, period))) for period in periods]
        return [Delivery(period, f"{stored.last_modified.isoformat()}#{stored.etag}", {f"finops/{source}_manifest": stored.key})
                for period, stored in found if stored is not None]

    return look


def cur_watched() -> Watched:
    from finops_pipeline.defs.aws.cur.pull import manifest_key

    return Watched("aws", "cur", "CUR manifest", _look("cur", manifest_key))


def focus_watched() -> Watched:
    from finops_pipeline.defs.aws.focus.pull import manifest_key

    return Watched("aws", "focus", "FOCUS export manifest", _look("focus", manifest_key))


def _description(what: str) -> str:
    return (f"Watches every configured {what} location's manifests for the open and previous billing period and requests a "
            "refresh of that account and month when a manifest is new or rewritten (LastModified/ETag cursor; run keys dedupe).")


def cur_manifest_sensor(job: Any) -> dg.SensorDefinition:
    return delivery_sensor(job, "cur_manifest_sensor", cur_watched, _description("CUR"))


def focus_manifest_sensor(job: Any) -> dg.SensorDefinition:
    return delivery_sensor(job, "focus_manifest_sensor", focus_watched, _description("AWS FOCUS export"))
