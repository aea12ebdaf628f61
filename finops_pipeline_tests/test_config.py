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


# --- one pass, every mistake, broken accounts kept ---------------------------------------------------

CUR = {
    "key": "aws-cur",
    "provider": "aws",
    "source": "cur",
    "name": "Payer CUR",
    "connected_at": "2026-11-01T09:30:00Z",
    "account_id": "111122223333",
    "bucket": "acme-billing",
    "prefix": "cur",
    "report_name": "finops",
}
PASTED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_one_pass_reports_every_mistake_with_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = config_with(
        tmp_path,
        {**AWS, "acount_id": AWS["account_id"], "account_id": None, "region": "Europe"},  # misspelt field, bad region
        {**AWS, "key": "aws-two", "provider": "amazon"},
        {**AWS, "key": "Bad Key", "source": "cost_explorr"},
    )
    config = load_config(path)
    assert [(p.account_key, p.index, p.field) for p in config.problems] == [
        ("aws-main", 0, "account_id"),
        ("aws-main", 0, "region"),
        ("aws-main", 0, "acount_id"),
        ("aws-two", 1, "provider"),
        (None, 2, "key"),
        (None, 2, "source"),
    ]
    messages = [p.message for p in config.problems]
    assert messages[0].startswith("missing required field 'account_id' for aws/cost_explorer (The payer")
    assert messages[1] == "field 'region' must be an AWS region like us-east-1, got 'Europe'"
    assert messages[2] == "unknown field 'acount_id' for aws/cost_explorer; did you mean 'account_id'?"
    assert messages[3] == "unknown provider 'amazon'"
    assert config.problems[3].fix == "use one of aws, azure, digitalocean, gcp"
    assert "did you mean 'cost_explorer'?" in messages[5]
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("error: ") == 6 + 1  # six problems, and aws-main's external id variable is unset
    assert f"error: {path}: accounts[2]: 'key' must be a short slug" in err
    assert "6 problem(s)" not in err and "7 problem(s)" in err


def test_broken_account_is_kept_marked_and_raises_when_used_while_the_others_are_valid(tmp_path: Path) -> None:
    from finops_pipeline.diagnosis import diagnose

    config = load_config(config_with(tmp_path, {**AWS, "account_id": "1234"}, CUR))
    broken, valid = config.account("aws-main"), config.account("aws-cur")
    assert broken.broken and not valid.broken and valid.model is not None and valid.settings["bucket"] == "acme-billing"
    assert [p.field for p in broken.problems] == ["account_id"]
    with pytest.raises(ConfigError, match="field 'account_id' must be a 12-digit AWS account id.*Fix: "):
        broken.settings["account_id"]
    with pytest.raises(ConfigError):
        broken.settings.get("role_arn")
    with pytest.raises(ConfigError):
        broken.env("external_id_env")
    assert broken.env_names() == ["EXTERNAL_ID"]  # still known, for redaction
    with pytest.raises(ConfigError) as raised:
        broken.settings["region"]
    assert diagnose("aws", "cost_explorer", raised.value).code == "config.invalid"
    with pytest.raises(ConfigError, match="12-digit"):
        load_config(config_with(tmp_path, {**AWS, "account_id": "1234"}, CUR), strict=True)


def test_a_problem_of_the_whole_file_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path, "acounts:\n  - key: a\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key 'acounts'; did you mean 'accounts'\?"):
        load_config(path)


def test_prefix_may_be_empty_for_an_export_at_the_root_of_the_bucket(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path, {**CUR, "prefix": ""}), strict=True)
    assert config.account("aws-cur").settings["prefix"] == ""
    assert config.account("aws-cur").settings["cur_version"] == "cur2"


def test_cur_needs_exactly_one_of_bucket_and_local_dir(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path, {**CUR, "local_dir": str(tmp_path)}))
    [problem] = config.problems
    assert problem.message == "give exactly one of 'bucket' (read from S3) or 'local_dir' (a synced copy)"


def test_same_payer_through_cost_explorer_and_cur_marks_the_later_account(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path, AWS, {**CUR, "account_id": AWS["account_id"]}))
    assert not config.account("aws-main").broken
    [problem] = config.account("aws-cur").problems
    assert problem.message == (
        "reads the same billing data as account 'aws-main' (AWS payer account 123456789012), so its costs would be counted twice"
    )
    assert "'aws-main' (which already reads that billing data)" in problem.fix
    assert config.problems == (problem,)


def test_two_cur_accounts_on_one_report_are_refused(tmp_path: Path) -> None:
    other_payer = {**CUR, "key": "aws-cur-2", "account_id": "999988887777", "prefix": "/cur/"}  # same report, typo'd payer
    config = load_config(config_with(tmp_path, CUR, other_payer))
    [problem] = config.account("aws-cur-2").problems
    assert "account 'aws-cur' (AWS CUR report s3://acme-billing/cur finops)" in problem.message
    local = {**CUR, "bucket": None, "local_dir": "/srv/cur"}
    config = load_config(config_with(tmp_path, local, {**local, "key": "aws-cur-2", "account_id": "999988887777"}))
    assert "AWS CUR report /srv/cur/cur finops" in config.account("aws-cur-2").problems[0].message
    assert not load_config(config_with(tmp_path, CUR, {**other_payer, "report_name": "other"})).problems


def test_same_gcp_billing_account_or_azure_subscription_twice(tmp_path: Path) -> None:
    gcp = {"key": "gcp-a", "provider": "gcp", "name": "A", "connected_at": "2026-11-01T09:30:00Z",
           "billing_account_id": "012345-6789AB-CDEF01", "project_id": "acme-finops", "dataset": "billing"}
    azure = {"key": "az-a", "provider": "azure", "name": "A", "connected_at": "2026-11-01T09:30:00Z",
             "subscription_id": "3b8d6f1a-2c4e-4a6b-9d8f-1e3a5c7b9d0f", "tenant_id": "7a1c0d2e-3f4b-4c5d-8e6f-0a1b2c3d4e5f",
             "client_id": "0f9e8d7c-6b5a-4d3c-9b2a-1f0e9d8c7b6a", "client_secret_env": "SECRET"}
    config = load_config(config_with(tmp_path, gcp, {**gcp, "key": "gcp-b", "dataset": "billing_copy"}, azure,
                                     {**azure, "key": "az-b", "subscription_id": azure["subscription_id"].upper()}))
    assert [(p.account_key, p.message.split(" (")[1].split(")")[0]) for p in config.problems] == [
        ("gcp-b", "GCP billing account 012345-6789AB-CDEF01"),
        ("az-b", "Azure subscription 3b8d6f1a-2c4e-4a6b-9d8f-1e3a5c7b9d0f"),
    ]


def test_connected_at_in_the_future_is_a_mistake(tmp_path: Path) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    config = load_config(config_with(tmp_path, {**AWS, "connected_at": "2062-11-01T09:30:00Z"}), now=now)
    [problem] = config.account("aws-main").problems
    assert problem.field == "connected_at"
    assert problem.message.startswith("field 'connected_at' is in the future (2062-11-01T09:30:00Z, now is 2026-11-30T12:00:00Z)")


def test_a_secret_pasted_into_an_env_field_is_named_but_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = config_with(tmp_path, {**AWS, "access_key_id_env": "AKIAIOSFODNN7EXAMPLE", "secret_access_key_env": PASTED_SECRET})
    config = load_config(path)
    account = config.account("aws-main")
    assert [p.field for p in account.problems] == ["secret_access_key_env"]  # AKIA... is a valid variable NAME
    assert "looks like a secret was pasted" in account.problems[0].message
    assert main(["check-config", "--config", str(path)]) == 1
    out = capsys.readouterr()
    assert "looks like a secret was pasted" in out.err
    for text in (out.out, out.err, repr(config), repr(account), str(config.problems), *map(str, config.problems)):
        assert PASTED_SECRET not in text and "wJalrXUtnFEMI" not in text
    with pytest.raises(ConfigError) as raised:
        account.env("secret_access_key_env")
    assert PASTED_SECRET not in str(raised.value)
    assert "secret_access_key_env" not in account.env_fields()


def test_a_field_or_top_level_key_given_twice_is_reported_with_its_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, (
        "accounts:\n"
        "  - key: aws-main\n"
        "    provider: aws\n"
        "    source: cost_explorer\n"
        "    connected_at: 2026-11-01T09:30:00Z\n"
        "    account_id: '123456789012'\n"
        "    account_id: '210987654321'\n"
    ))
    [problem] = load_config(path).account("aws-main").problems
    assert problem.field == "account_id"
    assert problem.message == "field 'account_id' is given twice (lines 6 and 7); YAML keeps only the last, so line 6's is ignored"
    twice = write(tmp_path, "accounts: []\nhistory_start: '2026-01'\naccounts:\n  - key: x\n")
    with pytest.raises(ConfigError, match=r"key 'accounts' is given twice \(lines 1 and 3\)"):
        load_config(twice)
    assert main(["check-config", "--config", str(twice)]) == 1
    assert "key 'accounts' is given twice" in capsys.readouterr().err


def test_a_file_that_is_not_utf8_says_where(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "finops.yaml"
    path.write_bytes(b"accounts:\n  - key: aws-main\n    name: Caf" + "é".encode("latin-1") + b"\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: not UTF-8: byte 41 (line 3) is 0xe9")
    assert "save the file as UTF-8" in str(raised.value)
    assert main(["check-config", "--config", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_pull_concurrency_overrides_a_source_default_and_refuses_what_it_cannot_mean(tmp_path: Path) -> None:
    import yaml

    from finops_pipeline.config import read_registry
    from finops_pipeline.sources import get_source

    ce, do = get_source("aws", "cost_explorer"), get_source("digitalocean", "billing")
    config = load_config(write(tmp_path, yaml.safe_dump({"pull_concurrency": {"aws_cost_explorer": 1}, "accounts": [AWS]})))
    assert (config.concurrency_for(ce), config.concurrency_for(do)) == (1, do.limits.concurrency)

    bad = read_registry(write(tmp_path, yaml.safe_dump({"pull_concurrency": {"aws_cost_explorr": 2, "digitalocean_billing": 0},
                                                         "accounts": [AWS]})))
    messages = [str(p) for p in bad.problems]
    assert any("unknown source 'aws_cost_explorr'; did you mean 'aws_cost_explorer'?" in m for m in messages)
    assert any("'pull_concurrency.digitalocean_billing' must be a whole number from 1 to 64, got 0" in m for m in messages)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "finops.yaml")
