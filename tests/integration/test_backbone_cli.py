"""The backbone zoo from the command line: --backbone, --backbone-options, the table."""


import json

import pytest

import tfrs_userlevel.cli.train as train
from tests.unit.cli.test_backbone_flags import SMOKE
from tfrs_userlevel.training import load_trained


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_backbone_options_reach_the_layer_and_the_saved_config(tmp_path):
    argv = SMOKE + ["--backbone", "dcnv2", "--backbone-options",
                    '{"structure": "stacked", "cross_layers": 2}', "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["backbone_options"] == {"structure": "stacked", "cross_layers": 2}
    model = load_trained(tmp_path)
    assert model.backbone.structure == "stacked" and model.backbone.cross.depth == 2
