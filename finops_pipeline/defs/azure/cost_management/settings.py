"""Settings of an Azure subscription read through Cost Management as an app registration."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import EnvName, Guid, PositiveInt, SourceSettings, Text, Url, choice

AzureCloud = choice("public", "china", "usgovernment")


class CostManagementSettings(SourceSettings):
    """The subscription, the app registration that reads it, and overrides for sovereign clouds."""

    subscription_id: Guid = Field(description="The subscription whose costs are read.")
    tenant_id: Guid = Field(description="The Entra ID tenant of the app registration.")
    client_id: Guid = Field(description="The app registration's application (client) id.")
    client_secret_env: EnvName = Field(description="Variable holding the app registration's client secret.")
    cloud: AzureCloud = Field("public", description="Which Azure cloud.")
    endpoint: Url | None = Field(None, description="Management endpoint override (sovereign clouds, the local sandbox).")
    authority_host: Url | None = Field(None, description="Entra ID authority override (sovereign clouds, the local sandbox).")
    max_throttle_wait_seconds: PositiveInt = Field(
        60, description="Longest wait a Cost Management 429 may ask for before the refresh gives up.")
    ca_bundle: Text | None = Field(
        None, description="PEM file of the certificate authorities to trust instead of the system's (a TLS-inspecting proxy, the local sandbox).")

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        return (("Azure subscription", self.subscription_id.lower()),)
