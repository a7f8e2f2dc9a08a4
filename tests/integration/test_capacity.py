"""The equal-capacity table's rows: every model is sized to its budget of parameters
outside the embeddings, as the table claims, on ML-1M's own fields."""

import pytest

from tfrs_userlevel import datasets
from tfrs_userlevel.experiments import capacity
from tfrs_userlevel.experiments.tables import TABLES
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.parameter_counts import parameter_counts
from tfrs_userlevel.training import TrainConfig
from tfrs_userlevel.training.builders import build_model


@pytest.fixture(scope="module")
def ml1m_fields(ml1m):
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_1m", 0))
    return spec, spec.build_vocabularies(ml1m["train"])


def test_every_row_lies_within_its_budget_and_every_model_appears_at_both(ml1m_fields):
    spec, vocabularies = ml1m_fields
    table = TABLES["ml1m_equal_capacity"]
    models = {}
    for row in table.rows:
        model_name, budget = row.name.rsplit(", ", 1)
        config = TrainConfig(**{**table.base, **row.overrides})
        count = parameter_counts(build_model(config, spec, vocabularies, 0.5))["outside_embeddings"]
        target = capacity.BUDGETS[budget]
        assert abs(count - target) <= capacity.TOLERANCE * target, (row.name, count)
        models.setdefault(model_name, set()).add(budget)
        assert row.reference == (None if model_name == "MLP"
                                 else capacity.row_name("MLP", budget))
    assert set(models) == {"MLP", "GPRec(MLP)", "UDG(MLP)", "MMoE", "PLE", "STAR", "APG",
                           "PEPNet", "DGPM"}
    assert all(budgets == set(capacity.BUDGETS) for budgets in models.values())


def test_udg_user_table_is_an_embedding_table_not_network_capacity(ml1m_fields):
    spec, vocabularies = ml1m_fields
    plain = build_model(TrainConfig(dataset="movielens_1m", user_level="udg"), spec,
                        vocabularies, 0.5)
    wide = build_model(TrainConfig(dataset="movielens_1m", user_level="udg", udg_dim=64), spec,
                       vocabularies, 0.5)
    grown = (parameter_counts(wide)["outside_embeddings"]
             - parameter_counts(plain)["outside_embeddings"])
    # A 48-wider UDG embedding (6,041 rows) adds only the gate networks' wider first layers.
    assert grown == 48 * 64 * len(wide.gating.networks)
