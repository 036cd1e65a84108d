"""train.log_to: TensorBoard event files read back; MLflow only where it is installed."""

from __future__ import annotations

import pytest
import yaml

from tf4ctr.config import parse_run_config
from tf4ctr.errors import ConfigError


def _config(project, **train):
    raw = yaml.safe_load((project / "run.yaml").read_text())
    raw["train"].update({"epochs": 2, **train})
    return parse_run_config(raw, source=project / "run.yaml")


def test_log_to_names_are_checked(tiny_project):
    with pytest.raises(ConfigError, match=r"train\.log_to: unknown tracker 'wandb'"):
        _config(tiny_project, log_to=["wandb"])
    with pytest.raises(ConfigError, match=r"train\.log_to: expected a list of names"):
        _config(tiny_project, log_to="tensorboard")


def test_log_to_is_no_part_of_the_key(tiny_project):
    from tf4ctr.experiments.keys import config_key

    raw = yaml.safe_load((tiny_project / "run.yaml").read_text())
    tracked = yaml.safe_load((tiny_project / "run.yaml").read_text())
    tracked["train"]["log_to"] = ["tensorboard"]
    source = tiny_project / "run.yaml"
    assert config_key(raw, source) == config_key(tracked, source)


def test_tensorboard_event_file_holds_each_epoch(tiny_project, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from tf4ctr import run

    monkeypatch.chdir(tiny_project)
    result = run.train(_config(tiny_project, log_to=["tensorboard"]), progress=False)
    folder = result.run_dir / "tensorboard"
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    epochs = result.metrics["epochs"]
    loss_terms = {k[6:-5] for k in epochs[0] if k.startswith("train_") and k.endswith("_loss")}
    assert {"total", "ctr"} <= loss_terms  # TF Loss: the fused log loss and the twin terms
    expected = {f"loss/{t}" for t in loss_terms} | {
        "valid/auc", "valid/gauc", "valid/logloss", "train/lr", "train/samples_per_second",
        "final/valid_auc", "final/test_auc",
    }  # fmt: skip
    assert expected <= tags, expected - tags
    auc = events.Scalars("valid/auc")
    assert [e.step for e in auc] == [1, 2]
    assert [e.value for e in auc] == pytest.approx([e["valid"]["auc"] for e in epochs], abs=1e-6)
    lr = events.Scalars("train/lr")
    assert [e.value for e in lr] == pytest.approx([e["lr"] for e in epochs])
    assert all(e.value > 0 for e in events.Scalars("train/samples_per_second"))
    assert events.Scalars("final/test_auc")[0].value == pytest.approx(
        result.metrics["test"]["auc"], abs=1e-6
    )
    content = events.PluginTagToContent("hparams")
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(v).session_start_info
        for v in content.values()
        if plugin_data_pb2.HParamsPluginData.FromString(v).HasField("session_start_info")
    )
    assert start.hparams["train.lr"].number_value == pytest.approx(1e-2)
    assert start.hparams["model.name"].string_value == "tf4ctr"
    assert start.hparams["loss.name"].string_value == "tf"


def test_no_tracker_no_folder(tiny_project, monkeypatch):
    from tf4ctr import run

    monkeypatch.chdir(tiny_project)
    result = run.train(_config(tiny_project, epochs=1), progress=False)
    assert not (result.run_dir / "tensorboard").exists()
    assert not (result.run_dir.parent / "mlruns").exists()


def test_mlflow_logs_epochs_and_the_run_files(tiny_project, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from tf4ctr import run

    monkeypatch.chdir(tiny_project)
    result = run.train(_config(tiny_project, log_to=["mlflow"]), progress=False)
    client = MlflowClient(tracking_uri=(result.run_dir.parent / "mlruns").resolve().as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("tf4ctr").experiment_id])
    history = client.get_metric_history(found.info.run_id, "valid_auc")
    assert [m.step for m in history] == [1, 2]
    assert found.data.params["train.lr"] == "0.01"
    files = {a.path for a in client.list_artifacts(found.info.run_id, "run")}
    assert {"run/metrics.json", "run/model.pt", "run/config.yaml"} <= files
