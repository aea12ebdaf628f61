"""The accounts registry: valid files load, every mistake names the file, the account, the field and the fix."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from finops_pipeline.cli import main
from finops_pipeline.config import ConfigError, MissingEnvironmentVariable, load_config

REPO = Path(__file__).resolve().parent.parent

AWS = {
    "key": "aws-main",
    "provider": "aws",
    "source": "cost_explorer",
    "name": "Main",
    "connected_at": "2026-11-01T09:30:00Z",
    "account_id": "123456789012",
    "role_arn": "arn:aws:iam::123456789012:role/finops",
    "external_id_env": "EXTERNAL_ID",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "finops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def config_with(tmp_path: Path, *accounts: dict) -> Path:
    import yaml

    return write(tmp_path, yaml.safe_dump({"accounts": list(accounts)}))


def test_example_config_loads() -> None:
    config = load_config(REPO / "finops.example.yaml")
    account = config.account("aws-main")
    assert account.provider == "aws" and account.source == "cost_explorer"
    assert account.connected_at == datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc)
    assert account.settings["region"] == "us-east-1"  # default filled in
    assert account.settings["external_id_env"] == "FINOPS_AWS_MAIN_EXTERNAL_ID"


def test_config_path_and_data_dir_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finops_pipeline.config import data_dir

    path = config_with(tmp_path, AWS)
    monkeypatch.setenv("FINOPS_CONFIG", str(path))
    monkeypatch.setenv("FINOPS_DATA_DIR", str(tmp_path / "lakehouse"))
    assert load_config().path == path
    assert data_dir() == tmp_path / "lakehouse"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provider": "oracle"}, "unknown provider 'oracle'"),
        ({"account_id": "1234"}, "field 'account_id' must be a 12-digit AWS account id, got '1234'"),
        ({"account_id": None}, "missing required field 'account_id'"),
        ({"source": "cur"}, "missing required field 'report_name'"),
        ({"connected_at": "last tuesday"}, "field 'connected_at' must be an ISO 8601 time"),
        ({"external_id_env": "s3cr3t value!"}, "must be the NAME of an environment variable"),
        ({"colour": "blue"}, "unknown field 'colour' for aws/cost_explorer"),
        ({"role_arn": None}, "external_id_env is set but role_arn is not"),
        ({"access_key_id_env": "KEY_ID"}, "give both access_key_id_env and secret_access_key_env, or neither"),
        ({"key": "Main Account"}, "'key' must be a short slug"),
    ],
)
def test_invalid_account_names_file_account_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = config_with(tmp_path, {**AWS, **change})
    with pytest.raises(ConfigError) as error:
        load_config(path, strict=True)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "Fix: " in str(error.value)


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = config_with(tmp_path, AWS, {**AWS, "name": "Again"})
    config = load_config(path)
    assert [a.name for a in config.accounts] == ["Main"]  # the second entry cannot be placed
    assert [str(p) for p in config.problems] == [
        f"{path}: account 'aws-main': duplicate key (also accounts[0]). Fix: every account needs its own key"
    ]


def test_malformed_yaml_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - key: a\n    provider: [aws\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        load_config(path)


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Copy finops.example.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_secret_is_read_at_use_and_a_missing_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = load_config(config_with(tmp_path, AWS)).account("aws-main")
    with pytest.raises(MissingEnvironmentVariable) as error:
        account.env("external_id_env")
    assert "EXTERNAL_ID" in str(error.value) and "export EXTERNAL_ID=" in str(error.value)
    monkeypatch.setenv("EXTERNAL_ID", "the-external-id")
    assert account.env("external_id_env") == "the-external-id"
    assert "the-external-id" not in repr(account)  # the registry holds names, never values


def test_check_config_command_reports_unset_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path = config_with(tmp_path, AWS)
    assert main(["check-config", "--config", str(path)]) == 1
    assert "EXTERNAL_ID (named by external_id_env) is not set" in capsys.readouterr().err
    monkeypatch.setenv("EXTERNAL_ID", "x")
    assert main(["check-config", "--config", str(path)]) == 0


def test_check_config_command_on_a_broken_file_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = config_with(tmp_path, {**AWS, "provider": "oracle"})
    assert main(["check-config", "--config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {path}: account 'aws-main': unknown provider 'oracle'")
    assert main(["check-config", "--config", str(tmp_path / "nope.yaml")]) == 2  # unreadable: the only exit 2
    assert "Copy finops.example.yaml" in capsys.readouterr().err
