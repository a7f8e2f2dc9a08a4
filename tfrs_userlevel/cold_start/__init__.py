"""Procedures for users a model has not seen, run on a trained `RankingModel` with UDG.

* `inner_step`: Algorithm 1's inner step, the update the meta-objective and the
  matched warm-up share;
* `meta_training`: trains UDG's meta-embedding generator (Algorithm 1) with the
  base model frozen;
* `warm_up`: the cold-start protocol: splitting new users' rows into phases,
  initialising their UDG rows, and warming them up on a few clicks (with Adam,
  `WarmUp`, or with the inner step, `InnerStepWarmUp`).

They read the model only through its public accessors (`user_column`,
`user_offset`, `profile_columns`, `behavior_field`, `user_index`, `score`).
"""
