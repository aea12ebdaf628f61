"""A google-cloud-bigquery Client for one configured account.

Credentials come from the variable `credentials_env` names (a service account key file path, or the
key's JSON itself), else application default credentials. Each account has its own credentials and
query project, which is why this builds a plain Client per account instead of using dagster-gcp's
BigQueryResource (one project and one credential per resource, and no api_endpoint).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from finops_pipeline.config import Account
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError

if TYPE_CHECKING:  # the Google SDK is imported where a client is made: loading the definitions stays cheap
    from google.auth.credentials import Credentials
    from google.cloud import bigquery

SCOPES = ("https://www.googleapis.com/auth/bigquery.readonly",)


def _credentials_problem(account: Account, what: str) -> ProviderError:
    variable = account.settings.get("credentials_env")
    return ProviderError(Diagnosis(
        code="gcp.credentials", status=ERROR,
        cause=f"The service account key in environment variable {variable} {what}.",
        fix=f"Put the service account's JSON key, or the path of the key file, into {variable} "
        "(IAM -> Service accounts -> Keys -> Add key -> JSON), or remove credentials_env to use application default credentials.",
        detail=f"credentials_env={variable}: {what}",  # never the key itself
    ))


def account_credentials(account: Account) -> Credentials | None:
    """The account's credentials; None means application default credentials (found by the client)."""
    from google.auth.credentials import AnonymousCredentials

    if account.settings.get("api_endpoint"):
        return AnonymousCredentials()  # the local stand-in only; it never serves a real account
    secret = account.env("credentials_env")
    if secret is None:
        return None
    from google.oauth2 import service_account

    text = secret.strip()
    try:
        if text.startswith("{"):
            info = json.loads(text)
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        if not os.path.isfile(text):
            raise _credentials_problem(account, "names a key file that does not exist")
        return service_account.Credentials.from_service_account_file(text, scopes=SCOPES)
    except ProviderError:
        raise
    except OSError:
        raise _credentials_problem(account, "names a key file that cannot be read") from None
    except (ValueError, KeyError, TypeError):  # the messages could quote the key: say what, not how
        raise _credentials_problem(account, "is not a valid service account JSON key") from None


def bigquery_client(account: Account) -> bigquery.Client:
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    settings = account.settings
    options = ClientOptions(api_endpoint=settings["api_endpoint"]) if settings.get("api_endpoint") else None
    return bigquery.Client(
        project=settings["project_id"],
        credentials=account_credentials(account),
        location=settings.get("location"),
        client_options=options,
    )
