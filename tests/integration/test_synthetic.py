"""Synthetic data with planted groups: streams of any size, and GPRec finds the groups."""


from collections import Counter

import numpy as np
import pytest

from tests.unit.datasets.test_synthetic import _rows
from tfrs_userlevel import data, streaming
from tfrs_userlevel.features import FeatureSpec


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_streamed_rows_with_lists_and_histories_are_the_in_memory_rows(tmp_path):
    """A spec with a multi-valued string field and a click history (with an attribute):
    the shards' vocabularies are the in-memory ones, and the streamed (ids, label) rows
    are the in-memory rows as a multiset."""
    from tfrs_userlevel import datasets
    from tfrs_userlevel.lookup import FeatureLookup

    splits = datasets.load_splits("movielens_100k", "time", history_length=5)
    columns = {k: v[:3000] for k, v in splits["train"].items()}
    columns["genre_list"] = columns["genres"]  # "Action|Comedy": a list of genres
    config = datasets.feature_spec("movielens_100k", 5) + [
        {"name": "genre_list", "dtype": "string", "role": "item", "multivalued": True,
         "max_length": 4}]
    spec = FeatureSpec.from_config(config)
    assert {f.name for f in spec.fields if f.multivalued} == {"genre_list",
                                                               "history_item_id"}
    chunks = [{k: v[i:i + 1000] for k, v in columns.items()} for i in (0, 1000, 2000)]
    manifest = streaming.write_tfrecords(chunks, spec, tmp_path, rows_per_shard=1200,
                                         block_rows=128)
    # Counted chunk by chunk while writing, equal to the in-memory count of all rows
    # (the history's item -> genres map included).
    assert manifest["vocabularies"] == spec.build_vocabularies(columns)
    assert "history_item_id:genres" in manifest["vocabularies"]
    lookup = FeatureLookup(spec.get_config(), manifest["vocabularies"])
    streamed = list(streaming.streaming_dataset(tmp_path, lookup, 512, seed=0))
    in_memory = data.lookup_columns(lookup, columns)
    assert set(streamed[0][0]) == set(in_memory) >= {"ids", "genre_list", "history_item_id"}
    assert np.any(in_memory["genre_list"][:, 1] >= 0)  # rows with several genres
    assert Counter(_rows(streamed)) == Counter(
        _rows([(in_memory, columns["label"][:, None])]))
