"""What a wheel built from this repository carries, and the configs command that hands out
the shipped configs to an installed tf4ctr."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tf4ctr.cli import main
from tf4ctr.experiments import load_experiment

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the rest of tf4ctr runs on 3.10
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_is_listed():
    """The package list is explicit (for the configs mapping): a new subpackage must join it."""
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src" / "tf4ctr").rglob("__init__.py")
    }
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == found | {"tf4ctr.configs"}


def test_torch_range_admits_the_ci_build_and_newer_releases():
    (torch,) = [
        Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch")
    ]
    assert "2.13.0" in torch.specifier and "2.14.1" in torch.specifier
    assert "3.0.0" in torch.specifier and "2.1.0" not in torch.specifier


def test_wheel_carries_the_configs(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tf4ctr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"tf4ctr/configs/{p.relative_to(ROOT / 'configs')}" for p in
               (ROOT / "configs").rglob("*.yaml")}  # fmt: skip
    assert shipped and shipped <= names
    assert "tf4ctr/py.typed" in names and "tf4ctr/cli.py" in names


def test_configs_copy_to_a_folder_of_the_users(tmp_path, capsys):
    assert main(["configs", "--copy-to", str(tmp_path)]) == 0
    copied = sorted(p.relative_to(tmp_path / "configs") for p in tmp_path.rglob("*.yaml"))
    assert copied == sorted(p.relative_to(ROOT / "configs") for p in
                            (ROOT / "configs").rglob("*.yaml"))  # fmt: skip
    # a copied grid keeps its store and runs inside the copy's folder
    exp = load_experiment(tmp_path / "configs" / "experiments" / "frappe_x1_table4.yaml")
    assert exp.store_path.resolve().is_relative_to(tmp_path.resolve())

    # a second copy keeps the user's edits
    edited = tmp_path / "configs" / "datasets" / "frappe_x1.yaml"
    edited.write_text("# mine\n")
    capsys.readouterr()
    assert main(["configs", "--copy-to", str(tmp_path)]) == 0
    assert edited.read_text() == "# mine\n"
    assert "already there" in capsys.readouterr().out


def test_reproduce_without_configs_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from tf4ctr.experiments import exp_cli

    monkeypatch.setattr(exp_cli, "_config_roots", lambda: [tmp_path / "configs"])
    assert main(["reproduce", "table4", "--dataset", "frappe_x1", "--dry-run"]) == 2
    assert "tf4ctr configs --copy-to ." in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["configs", "--help"]])
def test_configs_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0 and "--copy-to DIR" in capsys.readouterr().out
