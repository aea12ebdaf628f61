"""Settings of an Azure Cost Management export read from Blob Storage: where it lands and how to sign in."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from finops_pipeline.config import EnvName, Guid, SettingError, SourceSettings, Text, Url, choice, pattern
from finops_pipeline.defs.azure.cost_management.settings import AzureCloud

Dataset = choice("focus", "cost_details")
Container = pattern(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]|\$root", "a blob container name (3-63 lower-case letters, digits, -)")
ExportName = pattern(r"[A-Za-z0-9_.-]{1,160}", "an export name (letters, digits, _ . -)")


def _root_path(value: Any) -> str:
    # "" is a real root: the export directly in the container.
    if isinstance(value, bool) or not isinstance(value, str):
        raise SettingError("must be the export's directory in the container like exports/focus (or \"\" for the container root)")
    text = value.strip().strip("/")
    if any(part in (".", "..") for part in text.split("/")) or "//" in text or "\\" in text:
        raise SettingError(f"must be a plain directory path, got {text!r}", fix="write the 'Directory' of the export as the portal shows it")
    return text


RootPath = Annotated[str, BeforeValidator(_root_path)]


class ExportsSettings(SourceSettings):
    """A Cost Management export (FocusCost, or ActualCost + AmortizedCost cost details) in a storage account."""

    account_url: Url = Field(description="The storage account's blob endpoint, e.g. https://<account>.blob.core.windows.net.")
    container: Container = Field(description="The container the export writes to.")
    root_path: RootPath = Field("", description="The export's directory in the container (\"\": the container root).")
    dataset: Dataset = Field("focus", description="focus (the FocusCost export) or cost_details (ActualCost and AmortizedCost exports).")
    export_name: ExportName = Field(description="Name of the FOCUS export, or of the ActualCost export when dataset is cost_details.")
    amortized_export_name: ExportName | None = Field(
        None, description="Name of the AmortizedCost export (dataset cost_details only): it fills EffectiveCost.")
    # How to sign in: exactly one of the app registration, a SAS token, or a connection string.
    tenant_id: Guid | None = Field(None, description="Entra ID tenant of the app registration (with client_id, client_secret_env).")
    client_id: Guid | None = Field(None, description="The app registration's application (client) id.")
    client_secret_env: EnvName | None = Field(None, description="Variable holding the app registration's client secret.")
    sas_token_env: EnvName | None = Field(None, description="Variable holding a SAS token with read and list permission on the container.")
    connection_string_env: EnvName | None = Field(None, description="Variable holding the storage account's connection string.")
    cloud: AzureCloud = Field("public", description="Which Azure cloud (the app registration signs in there).")
    authority_host: Url | None = Field(None, description="Entra ID authority override (sovereign clouds, the local sandbox).")
    ca_bundle: Text | None = Field(
        None, description="PEM file of the certificate authorities to trust instead of the system's (a TLS-inspecting proxy).")

    def combination_problems(self) -> list[SettingError]:
        problems = super().combination_problems()
        app = (self.tenant_id, self.client_id, self.client_secret_env)
        ways = [name for name, given in (("app registration", any(v is not None for v in app)),
                                         ("sas_token_env", self.sas_token_env is not None),
                                         ("connection_string_env", self.connection_string_env is not None)) if given]
        if len(ways) != 1:
            problems.append(SettingError(
                f"give exactly one way to sign in, got {', '.join(ways) if ways else 'none'}",
                "use the app registration (tenant_id, client_id, client_secret_env; it needs Storage Blob Data Reader on the "
                "storage account), or sas_token_env, or connection_string_env"))
        elif ways == ["app registration"] and any(v is None for v in app):
            problems.append(SettingError("the app registration needs tenant_id, client_id and client_secret_env together",
                                         "add the missing one(s)"))
        elif ways == ["app registration"] and not self.account_url.lower().startswith("https://"):
            problems.append(SettingError("the app registration's token is only sent over HTTPS, and account_url is http",
                                         "use the storage account's https:// blob endpoint, or a SAS / connection string"))
        if self.dataset == "cost_details" and self.amortized_export_name is None:
            problems.append(SettingError(
                "dataset cost_details reads two exports: export_name (ActualCost) and amortized_export_name (AmortizedCost)",
                "create an AmortizedCost export beside the ActualCost one and name it in amortized_export_name, or use the FOCUS export"))
        if self.dataset == "focus" and self.amortized_export_name is not None:
            problems.append(SettingError("amortized_export_name is only for dataset cost_details (a FOCUS export holds both costs)",
                                         "remove amortized_export_name, or set dataset: cost_details"))
        return problems

    def export_names(self) -> tuple[str, ...]:
        return (self.export_name,) if self.amortized_export_name is None else (self.export_name, self.amortized_export_name)

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        where = f"{self.account_url.lower()}/{self.container}/{self.root_path}"
        return tuple(("Azure cost export", where, name) for name in self.export_names())
