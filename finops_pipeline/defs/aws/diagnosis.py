"""What AWS errors mean, for both AWS sources (Cost Explorer and CUR on S3)."""

from __future__ import annotations

from finops_pipeline.diagnosis import ERROR, PENDING, Advice, Diagnosis, malformed_answer

# AWS's own server errors: its side, transient; retried by botocore, then by the next refresh.
SERVER_ERROR_CODES = {"InternalFailure", "InternalError", "InternalServerError", "InternalServerException", "ServiceUnavailable",
                      "ServiceUnavailableException", "ServiceFailure", "500", "502", "503", "504"}
THROTTLING_CODES = {"LimitExceededException", "ThrottlingException", "Throttling", "RequestLimitExceeded", "SlowDown",
                    "TooManyRequestsException"}


def classify_aws(exc: BaseException, detail: str, *, kb: Advice, s3: bool) -> Diagnosis | None:
    """AWS errors shared by Cost Explorer and CUR; `s3` says whether the source reads S3 (CUR) or Cost Explorer.

    Network failures (DNS, TLS, timeouts, refused, and the pull's deadline) are left to the core's
    `classify_transport`, which reads the whole exception chain.
    """
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ParamValidationError
    from botocore.parsers import ResponseParserError

    title = "Amazon S3" if s3 else "AWS Cost Explorer"
    last = getattr(exc, "last_exception", None)  # s3transfer's RetriesExceededError wraps the real failure
    if isinstance(last, BaseException) and last is not exc:
        return classify_aws(last, detail, kb=kb, s3=s3)
    if isinstance(exc, ResponseParserError):
        return malformed_answer("aws", title, "the answer could not be parsed", detail).diagnosis
    if isinstance(exc, NoCredentialsError):
        return Diagnosis("aws.no_credentials", ERROR, "No AWS credentials were found for the pipeline.",
                         "Set access_key_id_env/secret_access_key_env in the account settings, or give the process "
                         "credentials through the default chain (AWS_PROFILE, instance role).", detail)
    if isinstance(exc, EndpointConnectionError) and _transport_evidence(exc):
        return None  # DNS, refused, timeout: the core says which
    if isinstance(exc, EndpointConnectionError):
        return Diagnosis("aws.unreachable", ERROR, "The AWS endpoint could not be reached.",
                         "Check the network and endpoint_url in the account settings.", detail, retryable=True)
    if isinstance(exc, ParamValidationError):
        return Diagnosis("aws.bad_request", ERROR, "The request to AWS was not valid.", "Check the account settings.", detail)
    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    operation = getattr(exc, "operation_name", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0

    if operation == "AssumeRole" or code in {"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"}:
        return Diagnosis("aws.assume_role_failed", ERROR,
                         "The pipeline could not assume the billing role (wrong role ARN, external id, or trust policy).",
                         "Check role_arn and the external id in the account settings; the role's trust policy must allow "
                         "the pipeline's principal with that external id.", detail)
    if "not enabled for cost explorer" in message.lower():
        return Diagnosis("aws.cost_explorer_not_enabled", PENDING,
                         "Cost Explorer is not activated for this account.",
                         "AWS Console -> Cost Management -> Cost Explorer: activate it (first activation takes 24 h).", detail)
    if code == "DataUnavailableException":
        return Diagnosis("aws.data_unavailable", PENDING, "Cost Explorer has not ingested data for this period yet.",
                         "Wait: billing data appears 24 to 48 hours after access is granted. " + kb.fix, detail, retryable=True)
    if code in THROTTLING_CODES:
        return Diagnosis("aws.throttled", ERROR, "AWS throttled the requests and retries ran out.",
                         "Nothing to change: the next scheduled refresh retries. Avoid running many refreshes at once.", detail, retryable=True)
    if code in SERVER_ERROR_CODES or status >= 500:
        return Diagnosis("aws.provider_error", ERROR,
                         f"{title} answered with a server error ({code or 'no code'}, HTTP {status or '5xx'}) and the retries ran "
                         "out. This is on AWS's side; the month keeps its last good data.",
                         "Nothing to change in the settings: the next refresh retries. If it persists, check the AWS Health "
                         "Dashboard for the service and region.", detail, retryable=True)
    if s3 and code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}:
        return Diagnosis("aws.s3_wrong_region", ERROR, "The CUR bucket is in another region than the one configured.",
                         "Set region in the account settings to the bucket's region (S3 console -> the bucket -> Properties).", detail)
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled", "403", "Forbidden"}:
        if s3:
            return Diagnosis("aws.s3_access_denied", ERROR, "The pipeline may not read the Cost and Usage Report bucket.",
                             "Grant the role (or access key) s3:ListBucket on the bucket and s3:GetObject on the export prefix "
                             "(plus kms:Decrypt on the key if the bucket uses SSE-KMS).", detail)
        return Diagnosis("aws.cost_explorer_access_denied", ERROR,
                         "The role is missing the Cost Explorer read permission.",
                         "Attach AWSCostExplorerReadOnlyAccess to the role, or a policy allowing ce:GetCostAndUsage and "
                         "ce:GetDimensionValues.", detail)
    if code in {"NoSuchBucket"}:
        return Diagnosis("aws.no_such_bucket", ERROR, "The configured S3 bucket does not exist.",
                         "Check 'bucket' in the account settings against the export's destination.", detail)
    if code in {"NoSuchKey", "404", "NotFound"}:
        return Diagnosis("aws.object_missing", ERROR, "An object the report names is missing from the bucket.", kb.fix, detail)
    return None


def _transport_evidence(exc: BaseException) -> bool:
    """Whether the exception chain holds the socket's own error (then the core's transport diagnosis is exact)."""
    import socket
    import ssl

    from finops_pipeline.diagnosis import exception_chain

    return any(isinstance(e, (OSError, socket.gaierror, ssl.SSLError, TimeoutError)) for e in exception_chain(exc)[1:])
