"""Settings of a GCP billing account read from its FOCUS export (or a FOCUS view) in BigQuery."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import pattern
from finops_pipeline.defs.gcp.bigquery_export.settings import BigQueryDataset, BigQueryExportSettings

# Letters, digits and underscores only: the name goes into SQL, and this keeps injection out.
BigQueryTable = pattern(r"[A-Za-z_][A-Za-z0-9_]{0,1023}", "a BigQuery table or view name (letters, digits, underscores)")


class FocusTableSettings(BigQueryExportSettings):
    """The billing account, the FOCUS export's dataset (or a view's), and the project that runs the queries."""

    dataset: BigQueryDataset = Field(
        description="Dataset of the FOCUS export, gcp_billing_immutable_<BILLING_ACCOUNT_ID>_<location>, or of your FOCUS view.")
    table: BigQueryTable | None = Field(
        None, description="A FOCUS view's name; default: the export's table gcp_billing_export_focus_<BILLING_ACCOUNT_ID>.")
