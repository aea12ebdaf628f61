"""Settings of a GCP billing account read from its BigQuery billing export."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import EnvName, PositiveInt, SourceSettings, Text, Url, pattern

BillingAccountId = pattern(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", "a billing account id like 012345-6789AB-CDEF01")
GcpProjectId = pattern(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a GCP project id (6-30 lowercase letters, digits, hyphens)")
# Letters, digits and underscores only: the dataset name goes into SQL, and this keeps injection out.
BigQueryDataset = pattern(r"[A-Za-z0-9_]{1,1024}", "a BigQuery dataset name (letters, digits, underscores)")


class BigQueryExportSettings(SourceSettings):
    """The billing account, the export's dataset and the project that runs the queries."""

    billing_account_id: BillingAccountId = Field(description="The Cloud Billing account whose export this is.")
    project_id: GcpProjectId = Field(description="Project that runs (and pays for) the queries.")
    dataset: BigQueryDataset = Field(description="Dataset holding the billing export, as entered in the account settings.")
    dataset_project_id: GcpProjectId | None = Field(None, description="Project of the dataset when it differs from project_id.")
    location: Text = Field("US", description="Location of the dataset.")
    credentials_env: EnvName | None = Field(
        None, description="Variable holding a service account key file path or its JSON (else application default credentials).")
    recent_days: PositiveInt = Field(10, description="Partition days re-read on each refresh (late rows).")
    api_endpoint: Url | None = Field(None, description="Only for the local sandbox.")

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        return (("GCP billing account", self.billing_account_id),)
