"""A sensor on new Azure cost export runs: when a month folder gets a newer run, refresh that account and month.

Cost Management writes every run of an export into the month's folder, its manifest.json last, and a
re-run of a month (a redelivery) is a new run with a new runInfo.runId beside the old ones. So the
token of a month is the runId of its newest run by runInfo.submittedTime, found by the same code the
refresh reads with (pull.latest_run): the run the sensor asks for is the run the refresh reads. A
cost details account reads two exports; its token joins both runs' ids, and a month is requested only
once both have a run. A month with no run yet, or whose run is still writing (files, no manifest), is
left for the next tick. The cursor, run requests, time budget and errors are finops_pipeline.delivery_sensor.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from finops_pipeline.config import Account
from finops_pipeline.delivery_sensor import Delivery, Watched, delivery_sensor
from finops_pipeline.diagnosis import ProviderError
from finops_pipeline.http_budget import Deadline, secrets_kept_out_of_logs

NOT_YET = {"azure.export_not_delivered", "azure.export_run_incomplete"}
RUN_TAG = "finops/azure_export_run"
MANIFEST_TAG = "finops/azure_export_manifest"


def look(account: Account, periods: list[str], seconds: float) -> list[Delivery]:
    """The newest run of every export the account reads, per watched month that has one."""
    from finops_pipeline.defs.azure.exports.pull import export_roles, latest_run, secrets
    from finops_pipeline.defs.azure.exports.store import open_store

    with secrets_kept_out_of_logs(secrets(account)):
        store = open_store(account, Deadline(seconds))
        try:
            deliveries = []
            for period in periods:
                runs = []
                for role, export in export_roles(account):
                    try:
                        runs.append(latest_run(store, account, export, period, role)[0])
                    except ProviderError as exc:
                        if exc.diagnosis.code not in NOT_YET:
                            raise
                        break
                else:
                    token = "+".join(r.run_id or f"{r.manifest}@{r.submitted.isoformat()}" for r in runs)
                    deliveries.append(Delivery(period, token, {RUN_TAG: ",".join(r.run_id for r in runs),
                                                                MANIFEST_TAG: ",".join(r.manifest for r in runs)}))
            return deliveries
        finally:
            store.close()


def exports_watched() -> Watched:
    return Watched("azure", "exports", "Azure cost export run", look)


def exports_run_sensor(job: Any) -> dg.SensorDefinition:
    return delivery_sensor(
        job, "azure_exports_run_sensor", exports_watched,
        "Watches every configured Azure cost export's month folders (the open and previous billing period) and requests a "
        "refresh of that account and month when a newer export run appears (its runInfo.runId is the cursor and the run key).")
