"""How many trainable parameters a `RankingModel` has, in all and outside its embedding
tables: the size that matters when models are compared at equal capacity."""

from __future__ import annotations


def parameter_counts(model) -> dict[str, int]:
    """{"all": trainable parameters, "outside_embeddings": the same without the embedding
    tables (the main table, the first-order table, UDG's user table)} of a
    `RankingModel`, built first if need be."""
    if not model.built:
        model(model.example_features())
    tables = [model.embedding] + ([model.first_order] if model.first_order is not None else [])
    if model.gating is not None:
        tables.append(model.gating.user_table)
    in_tables = {id(v) for layer in tables for v in layer.trainable_variables}
    sizes = [(id(v) in in_tables, int(v.shape.num_elements())) for v in model.trainable_variables]
    return {"all": sum(n for _, n in sizes),
            "outside_embeddings": sum(n for table, n in sizes if not table)}
