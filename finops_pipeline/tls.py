"""TLS trust for the HTTPS provider clients (Azure, DigitalOcean): always verified, never switched off."""

from __future__ import annotations

from pathlib import Path

from finops_pipeline.config import Account
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError


def connection_verify(account: Account) -> str | bool:
    """The system's CAs, or the PEM file the account's `ca_bundle` names (a TLS-inspecting proxy, the sandbox)."""
    path = account.settings.get("ca_bundle")
    if not path:
        return True
    if not Path(path).is_file():
        raise ProviderError(Diagnosis(
            f"{account.provider}.ca_bundle_missing", ERROR,
            f"The certificate authority file {path} named by ca_bundle does not exist.",
            f"Fix 'ca_bundle' for account '{account.key}' in finops.yaml (a PEM file), or remove it to trust the system's CAs.",
            f"ca_bundle={path}",
        ))
    return str(path)
