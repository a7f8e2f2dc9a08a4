"""Named forms of the GPRec layer, as constructor arguments.

* `PRESETS`: "paper" (the constructor's defaults) and "recommended" (the best
  validation form on MovieLens-1M); `preset_options` resolves one, with the
  options of another strategy where one is asked for;
* `ABLATIONS`: the paper's GPRec-1 ... GPRec-5, as overrides.
"""

from __future__ import annotations

from typing import Any

# Ablations of the paper's §IV-C, as overrides of the GPRec constructor.
ABLATIONS: dict[str, dict[str, Any]] = {
    "gprec-1": {"group_embedding": "single"},   # one embedding per group, softmax over groups
    "gprec-2": {"individual": False},           # no individual preference r_p (nor L_o)
    # No group auxiliary loss L_g. With the input and dp strategies nothing else trains
    # MLP_g, so L_c reads r̄_g through MLP_g's initial (random) weights.
    "gprec-3": {"group_weight": 0.0},
    "gprec-4": {"contrast_weight": 0.0},        # no contrastive loss L_c
    "gprec-5": {"orthogonal_weight": 0.0},      # no orthogonal loss L_o
}


# Named forms of the layer, as constructor arguments (`GPRec.from_preset`). "paper": the
# constructor's defaults, the form of the paper (per-group classifier MLPs, concatenated
# r_g, the input strategy, 64-32-16 heads). "recommended": the form with the best validation
# AUC for GPRec(MLP) on MovieLens-1M over 5 seeds, and the default of `train.py`: the
# ensemble strategy with learned weights whose average does not train the backbone, summed
# r_g, one shared classifier, one 16-unit layer in MLP_g and MLP_p, a linear MLP_p head,
# dropout 0.2 and no gradient from GPRec into the shared embeddings (the measurements are
# in results/gprec/ml1m_gprec.md and results/gprec/ml1m_gprec_tuning.md). Train it with the
# learning-rate schedule and early stopping on the backbone's own validation AUC (`train.py` does).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "recommended": {
        "strategy": "ensemble", "reduce": "sum", "classifier_units": (16,),
        "classifier_shared": True, "head_units": (16,), "individual_units": (16,),
        "prediction_units": (), "dropout": 0.2, "ensemble_weights": "learned",
        "ensemble_backbone_gradient": False, "stop_embedding_gradient": True,
    },
}
# A preset with another strategy: these replace the preset's own options for it (the
# recommended form's learned, detached average and dropout belong to the ensemble; with
# input and dp it is `train.py --strategy input|dp`'s default).
STRATEGY_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "recommended": {
        "input": {"ensemble_weights": "equal", "ensemble_backbone_gradient": True,
                  "dropout": 0.0, "prediction_units": ()},
        "dp": {"ensemble_weights": "equal", "ensemble_backbone_gradient": True,
               "dropout": 0.0, "prediction_units": (64, 32, 16)},
    },
}


def preset_options(preset: str, **overrides) -> dict[str, Any]:
    """The constructor arguments of a named form with `overrides` on top (a strategy
    other than the preset's own brings that strategy's options, `STRATEGY_PRESETS`)."""
    if preset not in PRESETS:
        raise ValueError(f"GPRec: unknown preset {preset!r}; valid presets are "
                         f"{sorted(PRESETS)}")
    options = dict(PRESETS[preset])
    strategy = overrides.get("strategy", options.get("strategy", "input"))
    options.update(STRATEGY_PRESETS.get(preset, {}).get(strategy, {}))
    return {**options, **overrides}
