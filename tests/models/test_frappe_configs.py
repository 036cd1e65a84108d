"""The Frappe_x1 configs of FinalMLP, FinalNet, GDCN and TF4CTR around FinalMLP's streams
pass the check that `tf4ctr train` runs before reading any data (model keys, a dry build
on the dataset's fields, a forward pass), with the variants their comments name."""

import pytest

from tests.conftest import REPO
from tf4ctr.config import load_run_config
from tf4ctr.framework import TwinModel
from tf4ctr.models import build_model
from tf4ctr.nn.finalmlp import GatedMLPEncoder
from tf4ctr.nn.gdcn import GatedCrossEncoder
from tf4ctr.run import check_config, placeholder_schema

CONFIGS = REPO / "configs" / "frappe_x1"


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("finalmlp", []),
        ("finalnet", []),
        ("finalnet", ["model.block_type=1B", "model.field_gate=false", "model.block1_dropout=0.2"]),
        ("gdcn", []),
        ("gdcn", ["model.model_structure=stacked"]),
        ("tf4ctr_finalmlp", []),
        ("tf4ctr_finalmlp", ["model.complex_encoder={name: gated_cross, num_layers: 3}"]),
    ],
)
def test_config_passes_the_pre_training_check(name, overrides):
    config = load_run_config(CONFIGS / f"{name}.yaml", ["train.epochs=1", *overrides])
    check_config(config)


def test_tf4ctr_finalmlp_puts_the_streams_on_both_sides():
    config = load_run_config(CONFIGS / "tf4ctr_finalmlp.yaml")
    assert config.model_name == "tf4ctr"
    schema = placeholder_schema(check_config(config))
    model = build_model(config.model_name, schema, **config.model_hparams)
    assert isinstance(model, TwinModel)
    assert isinstance(model.simple_encoder, GatedMLPEncoder)
    assert isinstance(model.complex_encoder, GatedMLPEncoder)
    names = [f.name for f in schema.categorical]
    # the positions in the file are item (simple side) and user (complex side)
    assert names[1] == "item" and names[0] == "user"
    swapped = load_run_config(
        CONFIGS / "tf4ctr_finalmlp.yaml",
        ["model.complex_encoder={name: gated_cross, num_layers: 3}"],
    )
    model = build_model(swapped.model_name, schema, **swapped.model_hparams)
    assert isinstance(model.complex_encoder, GatedCrossEncoder)
