"""The CLI's Dagster home comes from the package (no checkout needed), and a missing sandbox is explained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from finops_pipeline.cli import INSTANCE_TEMPLATES, ensure_dagster_home, main


def test_dagster_home_gets_the_packaged_instance_settings_and_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert ensure_dagster_home() == home
    assert (home / "dagster.yaml").read_text() == (INSTANCE_TEMPLATES / "dagster.yaml").read_text()
    assert not (home / "dagster.yaml").is_symlink()  # a copy: an installed package's files are not linked into the home
    workspace = yaml.safe_load((home / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"] == {"module_name": "finops_pipeline.definitions", "location_name": "finops_pipeline"}

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # a local edit survives
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_a_link_to_the_old_repo_settings_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(tmp_path / "dagster.yaml")  # `make dagster-home` used to link ../dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    assert not (home / "dagster.yaml").is_symlink()
    assert (home / "dagster.yaml").read_text() == (INSTANCE_TEMPLATES / "dagster.yaml").read_text()
    assert not (tmp_path / "dagster.yaml").exists()


@pytest.mark.parametrize("command", [["demo"], ["sandbox"]])
def test_without_the_sandbox_package_the_cli_says_how_to_get_it(command: list[str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in [m for m in sys.modules if m == "finops_sandbox" or m.startswith("finops_sandbox.")] + ["finops_sandbox"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed (submodules other tests imported too)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main([*command, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "finops_sandbox" in err and "pip install -e ./sandbox" in err and "Traceback" not in err
