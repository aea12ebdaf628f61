"""Settings of a DigitalOcean team read through its billing API."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import EnvName, SourceSettings, Text, Url


class BillingSettings(SourceSettings):
    """The team's API token (by variable name) and overrides for the sandbox or a TLS-inspecting proxy."""

    token_env: EnvName = Field(description="Variable holding the API token (scope billing:read).")
    # http is refused when the token is sent (azure-core's bearer policy); the sandbox tests rely on that diagnosis.
    endpoint: Url | None = Field(None, description="API endpoint override (the local sandbox). Must be https: the token is a bearer token.")
    ca_bundle: Text | None = Field(
        None, description="PEM file of the certificate authorities to trust instead of the system's (a TLS-inspecting proxy, the local sandbox).")

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        # A token belongs to one team: the same variable twice reads the same team twice.
        return (("DigitalOcean token from", self.token_env),)
