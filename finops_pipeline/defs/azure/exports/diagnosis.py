"""What Blob Storage (and Entra ID sign-in) errors mean for an Azure cost export account."""

from __future__ import annotations

import re

from finops_pipeline.diagnosis import ERROR, Diagnosis, classify_transport, exception_chain

TITLE = "Azure Blob Storage"
GRANT = ("Grant the app registration's service principal the Storage Blob Data Reader role on the storage account (Storage "
         "account -> Access control (IAM) -> Add role assignment; a new assignment takes up to 30 minutes), or give a SAS token "
         "with read (r) and list (l) permission on the container.")
# A SAS or an account key can sit in a URL or a connection string the SDK quotes: never in a detail.
_SECRET_PARTS = re.compile(r"(?i)\b(sig|AccountKey|SharedAccessSignature)=[^&;\s'\"]+")


def _storage_code(exc: BaseException) -> tuple[str | None, int | None]:
    """(Storage error code, HTTP status) of a storage answer anywhere in the chain; (None, None) when none answered."""
    for error in exception_chain(exc):
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None) or getattr(error, "status_code", None)
        code = getattr(error, "error_code", None)
        code = getattr(code, "value", code)  # azure-storage-blob's StorageErrorCode enum -> its wire name
        if code is None and response is not None:
            headers = getattr(response, "headers", None) or {}
            code = headers.get("x-ms-error-code")
        if code or (status and response is not None and getattr(response, "headers", {}).get("x-ms-request-id")):
            return (str(code) if code else None), status
    return None, None


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover
        return None
    detail = _SECRET_PARTS.sub(lambda m: f"{m.group(1)}=***", detail)
    code, status = _storage_code(exc)
    text = " ".join(str(e) for e in exception_chain(exc))
    if code == "AuthorizationFailure" and "failed to authenticate" in text:
        code = "AuthenticationFailed"  # a bad signature, as Azurite words it: the credentials, not a permission
    if code in {"AuthorizationPermissionMismatch", "AuthorizationFailure"}:
        extra = (" If the storage account limits network access (firewall, private endpoint), allow this machine's network as well."
                 if code == "AuthorizationFailure" else "")
        return Diagnosis("azure.storage_permission_missing", ERROR,
                         f"The storage account refused to list or read the export's blobs ({code}): the identity signed in, but has no "
                         "read permission on the container" + (", or the account's network rules refuse this machine" if code ==
                                                                 "AuthorizationFailure" else "") + ".",
                         GRANT + extra, detail)
    if code in {"AuthenticationFailed", "NoAuthenticationInformation", "InvalidAuthenticationInfo"}:
        return Diagnosis("azure.storage_authentication_failed", ERROR,
                         f"The storage account did not accept the credentials ({code}): a wrong or rotated account key, a SAS token "
                         "that expired or was revoked, or one for another account.",
                         "Put a current connection string (Storage account -> Access keys) or a new SAS token (read and list on the "
                         "container) in the variable the account settings name, or use the app registration instead.", detail)
    if code == "ContainerNotFound":
        return Diagnosis("azure.export_container_not_found", ERROR,
                         "The storage account has no container by the configured name.",
                         "Set container in the account settings to the export's container (Cost Management -> Exports -> the export "
                         "-> Storage: container), and account_url to its storage account.", detail)
    if code in {"AccountIsDisabled", "ResourceNotFound", "InvalidUri", "InvalidResourceName"} or (status == 404 and code is None):
        return Diagnosis("azure.export_path_not_found", ERROR,
                         f"The storage account answered that the export's location does not exist ({code or 'HTTP 404'}).",
                         "Check account_url (the storage account's blob endpoint), container and root_path against the export's "
                         "storage destination (Cost Management -> Exports -> the export).", detail)
    if status is not None and (status >= 500 or status == 429 or code in {"ServerBusy", "OperationTimedOut", "InternalError"}):
        return Diagnosis("azure.storage_unavailable", ERROR,
                         f"Blob Storage failed with {f'HTTP {status}' if status else code} and the retries within give_up_after_seconds "
                         "ran out.", "Nothing to change in the settings: the next refresh retries. If it persists, check Azure's status "
                         "page for Storage in the account's region.", detail, retryable=True)
    if code is not None or (status is not None and isinstance(exc, HttpResponseError)):
        return Diagnosis("azure.storage_refused", ERROR,
                         f"Blob Storage refused the request ({code or f'HTTP {status}'}).",
                         "Read the detail (the storage error code says why); check account_url, container and the credentials the "
                         "account settings name.", detail)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        found = classify_transport(exc, detail, "azure", TITLE)
        if found is not None:
            return found
    # Not a storage answer: the app registration's sign-in (Entra ID), read as the Query API source reads it.
    from finops_pipeline.defs.azure.cost_management.diagnosis import classify as sign_in

    found = sign_in(exc, detail)
    if found is not None and found.code in {"azure.subscription_not_found", "azure.access_denied", "azure.throttled",
                                            "azure.provider_error", "azure.rbac_access_denied"}:
        return None  # Cost Management's own answers: not what happened here
    return found
