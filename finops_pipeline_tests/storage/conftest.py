"""The lake's backends for the storage tests: a local directory, S3 (moto's server), Azure Blob
Storage (Azurite) and Google Cloud Storage (the gcp-storage-emulator package's server), all on
127.0.0.1; each test gets an empty bucket or container (fixtures `s3_lake`, `azure_lake`, `gcs_lake`
in the root conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from finops_pipeline import storage

BACKENDS = ["local", "s3", "azure", "gcs"]


@pytest.fixture(params=BACKENDS)
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> storage.Location:
    """The data directory on each backend: a Path, or an s3:// / az:// URL. Uploads stage in tmp_path."""
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path / "staging"))
    if request.param == "local":
        return tmp_path / "data"
    return request.getfixturevalue(f"{request.param}_lake")
