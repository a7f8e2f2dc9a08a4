"""The composed GPRec layer: group level + individual level + a construction strategy.

Objective (docs/gprec.md, paper eq. 19–20), each term returned by name:

    L = L_main + α·L_g − β·L_c + γ·L_o + w_b·L_backbone

L_main (the final prediction's BCE) belongs to the ranking task; the layer
returns the other, already weighted, terms when it is given labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.dense_stack import DenseStack
from tfrs_userlevel.gprec import strategies as strategy_lib
from tfrs_userlevel.gprec.factored import materialize
from tfrs_userlevel.gprec.groups import (
    REDUCTIONS,
    DualGroupEmbedding,
    GroupClassifier,
    GumbelMask,
    SingleGroupEmbedding,
)
from tfrs_userlevel.gprec.individual import IndividualPreference, OrthogonalLoss
from tfrs_userlevel.gprec.presets import preset_options
from tfrs_userlevel.loss_terms import LossTerms

GROUP_EMBEDDINGS = ("dual", "single")
BASES = ("hidden", "embeddings")
CONTRASTS = ("paper", "flipped")

def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GPRec(LossTerms, keras.layers.Layer):
    """Bi-level user modeling (GPRec) on top of any backbone.

    Args:
      groups: G (default 60).
      temperature: τ of the Gumbel masks.
      reduce: "concat" (r_g ∈ R^{G·d}, the paper's eq. 6), "sum" (R^d) or
        "mean" (the sum / G; not in the paper).
      strategy: "input" (eq. 14), "dp" (eq. 15–16) or "ensemble" (eq. 17–18).
      group_embedding: "dual" (GPRec) or "single" (ablation GPRec-1: softmax
        over groups and one embedding each; no contrastive term).
      individual: Use the individual preference r_p (False: ablation GPRec-2).
      embedding_dim: d of the group tables (the model's embedding size).
      classifier_units: Hidden widths of each group's classifier MLP.
      classifier_shared: Not in the paper: the classifier's hidden layers are
        shared by all groups, each group keeping its own output layer
        (`GroupClassifier(shared_hidden=True)`; much cheaper on CPU).
      head_units: Hidden widths of the group head MLP_g (64-32-16).
      prediction_units: Hidden widths of the strategy's MLP (MLP_pred of eq. 14,
        the generated MLP of eq. 16, the individual head of eq. 17); default
        `head_units`; () makes the input strategy a linear layer on [h, r_g, r_p].
      individual_units: Hidden widths of MLP_p.
      dropout: Dropout of the MLPs.
      group_weight: α (weight of L_g).
      contrast_weight: β (weight of L_c, which is maximised).
      orthogonal_weight: γ (weight of L_o).
      backbone_weight: Weight of the backbone head's own BCE (the authors'
        script uses 1); needs `inputs["logit"]`.
      contrast: The contrastive pass (eq. 10) runs MLP_g as a fixed function:
        `tf.stop_gradient` on its weights and no dropout (inference mode), so
        that only the masks, the group tables and what feeds them learn from
        it. "paper": the term is −β·ℓ(ȳ_g, y) (eq. 20; unbounded below,
        its gradient is bounded by β per example); "flipped": +β·ℓ(ȳ_g, 1 − y),
        a bounded variant with the same gradient direction at the start.
      dp_rank: Rank k of the "dp" strategy's generated layers.
      ensemble_average: "probability" or "logit" for the "ensemble" strategy.
      ensemble_weights: "equal" (the paper's average) or "learned" (not in the
        paper: softmax weights over the ensemble's predictions, trained from
        the plain average) for the "ensemble" strategy.
      ensemble_backbone_gradient: Whether the "ensemble" strategy's average
        trains the backbone (the paper). False (not in the paper): the
        backbone learns from its own BCE term alone (needs backbone_weight > 0).
      output_bias: Initial bias of every new logit head (e.g. logit(p̄)).
      residual: Not in the paper: for the "input" and "dp" strategies, the final
        logit is the backbone's own logit plus a learned scale (starting at 0,
        as in ReZero) times the strategy's output, so that GPRec starts as
        the backbone and learns a user-level correction on top of it.
      base: What the strategy reads as the base representation h: "hidden",
        the backbone's hidden state (its last layer before its own head), or
        "embeddings", the flattened feature embeddings E [B, F·d]. The paper
        (§III-A) splits a model into representation learning (the backbone) and
        a prediction module, "typically an MLP"; for the MLP backbone the
        representation is E itself and the MLP is the prediction module, so
        with "embeddings" the input strategy's MLP_pred([E, r_g, r_p]) takes
        the place of the backbone's MLP (give it the backbone's widths).
      stop_embedding_gradient: Not in the paper: GPRec reads the user, personal
        and item embeddings without sending gradients into them, so that only
        the backbone trains the shared embedding table.
      group_init_stddev: Not in the paper: the std of a normal initializer of
        the group tables P⁺, P⁻ (None: Glorot uniform, std ≈ 0.16 at G = 60,
        d = 16, so that r_g summed over G groups starts near rms 1 while the
        feature embeddings start at 1e-4 and stay near 0.03).
      noisy_prediction: False (not in the paper): in training the strategy
        reads r_g from the noise-free masks σ((S_{g,1} − S_{g,2})/τ), the ones
        inference uses (for the ensemble, MLP_g's logit in the average comes
        from a second pass of MLP_g on that r_g); the Gumbel-sampled masks still
        make the r_g of the group loss L_g, the contrastive pass and the
        orthogonal loss. True (the paper): every use of r_g reads the sampled
        masks.
      add_losses: Also `add_loss` the sum of the weighted terms, for a model
        whose training step adds `model.losses` (a functional model). In a
        `tfrs.Model`, add the returned "loss" in `compute_loss` instead:
        TFRS reports `add_loss` terms as `regularization_loss`
        (`tfrs_userlevel.loss_terms`). `RankingModel` refuses True.
        Outside `RankingModel`, each term is also logged under its name
        (`gprec_backbone_loss`, `gprec_group_loss`, `gprec_contrastive_loss`,
        `gprec_orthogonal_loss`) as a metric of the model that holds the layer.

    Call:
      inputs: dict with
        "user": all user-field embeddings E_u [B, F_u, d];
        "personal": personal-field embeddings E_p [B, F_p, d];
        "item": item-field embeddings [B, F_i, d] (flattened to e_i);
        "hidden": the backbone's hidden state h [B, H];
        "logit": the backbone head's logit [B, 1] (ensemble and backbone term);
        "labels": optional float32 [B, 1]; the losses are computed only if given.
      training: Gumbel noise and dropout on/off.

    Returns:
      {"logit": [B, 1], "losses": {name: weighted scalar}, "loss": their sum
      (a scalar, 0 without labels), "masks": [B, G, 2]
      (or softmax weights [B, G, 1] for GPRec-1), "group": r_g,
      "individual": r_p or None, "heads": the ensemble's averaged logits by name
      ({"backbone", "group", "individual"}, each [B, 1]; {} for input and dp)}.
    """

    def __init__(self, groups: int = 60, temperature: float = 0.5, reduce: str = "concat",
                 strategy: str = "input", group_embedding: str = "dual",
                 individual: bool = True, embedding_dim: int = 16,
                 classifier_units: Sequence[int] = (16,), classifier_shared: bool = False,
                 head_units: Sequence[int] = (64, 32, 16), individual_units: Sequence[int] = (64,),
                 prediction_units: Sequence[int] | None = None,
                 dropout: float = 0.2, group_weight: float = 1.0, contrast_weight: float = 1e-3,
                 orthogonal_weight: float = 0.1, backbone_weight: float = 1.0,
                 contrast: str = "paper", dp_rank: int = 16,
                 ensemble_average: str = "probability", ensemble_weights: str = "equal",
                 ensemble_backbone_gradient: bool = True, output_bias: float = 0.0,
                 residual: bool = False, stop_embedding_gradient: bool = False,
                 base: str = "hidden", group_init_stddev: float | None = None,
                 noisy_prediction: bool = True, add_losses: bool = False, **kwargs):
        super().__init__(**kwargs)
        checks = [
            (groups >= 1, f"groups must be >= 1, got {groups}"),
            (temperature > 0, f"temperature must be > 0, got {temperature}"),
            (reduce in REDUCTIONS, f"reduce must be one of {REDUCTIONS}, got {reduce!r}"),
            (strategy in strategy_lib.STRATEGIES,
             f"strategy must be one of {strategy_lib.STRATEGIES}, got {strategy!r}"),
            (group_embedding in GROUP_EMBEDDINGS,
             f"group_embedding must be one of {GROUP_EMBEDDINGS}, got {group_embedding!r}"),
            (contrast in CONTRASTS, f"contrast must be one of {CONTRASTS}, got {contrast!r}"),
            (base in BASES, f"base must be one of {BASES}, got {base!r}"),
            (group_init_stddev is None or group_init_stddev > 0,
             f"group_init_stddev must be > 0 (or None), got {group_init_stddev}"),
            (min(group_weight, contrast_weight, orthogonal_weight, backbone_weight) >= 0,
             "loss weights must be >= 0"),
            (ensemble_weights in strategy_lib.ENSEMBLE_WEIGHTS,
             f"ensemble_weights must be one of {strategy_lib.ENSEMBLE_WEIGHTS}, "
             f"got {ensemble_weights!r}"),
            (ensemble_weights == "equal" or strategy == "ensemble",
             "ensemble_weights='learned' needs the ensemble strategy"),
            (ensemble_backbone_gradient or strategy == "ensemble",
             "ensemble_backbone_gradient=False needs the ensemble strategy"),
            (ensemble_backbone_gradient or backbone_weight > 0,
             "ensemble_backbone_gradient=False needs backbone_weight > 0, or nothing trains "
             "the backbone"),
            (not (residual and strategy == "ensemble"),
             "residual applies to the input and dp strategies (ensemble already averages "
             "in the backbone's prediction)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"GPRec: {message}")
        self.groups = int(groups)
        self.temperature = float(temperature)
        self.reduce = reduce
        self.strategy = strategy
        self.group_embedding = group_embedding
        self.individual = bool(individual)
        self.embedding_dim = int(embedding_dim)
        self.classifier_units = tuple(int(u) for u in classifier_units)
        self.classifier_shared = bool(classifier_shared)
        self.head_units = tuple(int(u) for u in head_units)
        self.individual_units = tuple(int(u) for u in individual_units)
        self.prediction_units = (self.head_units if prediction_units is None
                                 else tuple(int(u) for u in prediction_units))
        self.dropout = float(dropout)
        self.group_weight = float(group_weight)
        self.contrast_weight = float(contrast_weight)
        self.orthogonal_weight = float(orthogonal_weight)
        self.backbone_weight = float(backbone_weight)
        self.contrast = contrast
        self.dp_rank = int(dp_rank)
        self.ensemble_average = ensemble_average
        self.ensemble_weights = ensemble_weights
        self.ensemble_backbone_gradient = bool(ensemble_backbone_gradient)
        self.output_bias = float(output_bias)
        self.residual = bool(residual)
        self.stop_embedding_gradient = bool(stop_embedding_gradient)
        self.base = base
        self.group_init_stddev = (None if group_init_stddev is None
                                  else float(group_init_stddev))
        self.noisy_prediction = bool(noisy_prediction)
        self.add_losses = bool(add_losses)
        self._factored = True  # False: build r_g and r_p (the reference path of the tests)

        dual = group_embedding == "dual"
        table_initializer = ("glorot_uniform" if self.group_init_stddev is None else
                             keras.initializers.RandomNormal(stddev=self.group_init_stddev))
        self.classifier = GroupClassifier(self.groups, self.classifier_units,
                                          outputs=2 if dual else 1,
                                          shared_hidden=self.classifier_shared,
                                          name="classifier")
        if dual:
            self.mask = GumbelMask(self.temperature, name="gumbel_mask")
            self.group_table = DualGroupEmbedding(self.groups, self.embedding_dim, reduce,
                                                  initializer=table_initializer,
                                                  name="group_embedding")
        else:
            self.mask = None
            self.group_table = SingleGroupEmbedding(self.groups, self.embedding_dim,
                                                    initializer=table_initializer,
                                                    name="group_embedding")
        self.group_head = DenseStack(self.head_units, 1, dropout=self.dropout,
                                     output_bias=self.output_bias, name="group_head")
        self.individual_preference = (
            IndividualPreference(self.group_table.output_dim, self.individual_units,
                                 name="individual_preference") if self.individual else None)
        self.orthogonal = OrthogonalLoss(name="orthogonal_loss")
        options = {"hidden_units": self.prediction_units, "dropout": self.dropout,
                   "output_bias": 0.0 if self.residual else self.output_bias}
        if strategy == "dp":
            options["rank"] = self.dp_rank
        if strategy == "ensemble":
            options["average"] = ensemble_average
            options["weights"] = ensemble_weights
            options["backbone_gradient"] = self.ensemble_backbone_gradient
        options["name"] = f"{strategy}_strategy"
        self.combiner = strategy_lib.get(strategy, **options)

        names = []
        if self.backbone_weight:
            names.append("gprec_backbone_loss")
        if self.group_weight:
            names.append("gprec_group_loss")
        if self.contrast_weight and dual:
            names.append("gprec_contrastive_loss")
        if self.orthogonal_weight and self.individual:
            names.append("gprec_orthogonal_loss")
        self.loss_names = tuple(names)

    def build(self, input_shape):
        if self.residual:
            self.residual_scale = self.add_weight(name="residual_scale", shape=(),
                                                  initializer="zeros")
        super().build(input_shape)

    def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
        if self.stop_embedding_gradient:
            inputs = {**inputs, **{k: tf.stop_gradient(inputs[k])
                                   for k in ("user", "personal", "item")}}
        item = inputs["item"]
        item = tf.reshape(item, [-1, item.shape[1] * item.shape[2]])
        # r_g ("concat") and r_p only meet linear maps and a cosine, so they stay factored
        # (tfrs_userlevel.gprec.factored): the same values and gradients, far less work.
        factored = (self._factored and self.mask is not None
                    and self.group_table.reduce == "concat")
        if self.mask is not None:
            # Fast path of eq. 2–6: only S_{g,1} − S_{g,2} and m_{g,1} are needed.
            difference = self.classifier.difference(inputs["user"])
            inside = self.mask.inside(difference, training=training)
            masks = tf.stack([inside, 1.0 - inside], axis=-1)
            # r̄_g (eq. 9) is built beside r_g: for "sum"/"mean" the two share one product.
            group, contrast = self.group_table.with_contrast(inside, factored=factored)
            prediction_group = group
            if training and not self.noisy_prediction:
                clean = self.mask.inside(difference, training=False)
                prediction_group = (self.group_table.factored(clean) if factored
                                    else self.group_table.from_inside(clean))
        else:
            scores = self.classifier(inputs["user"])  # [B, G, 1]
            group = self.group_table(scores)
            masks = tf.nn.softmax(scores, axis=1)  # the weights of the weighted sum
            prediction_group = group  # no noise to leave out
        labels = inputs.get("labels")
        # MLP_g's logit feeds L_g in training and the ensemble's average; the input and dp
        # strategies do not read it, so their serving graph skips the group head.
        head_input = [group, item]  # read as concat([r_g, e_i])
        group_logit = None
        if self.strategy == "ensemble" or (labels is not None
                                           and "gprec_group_loss" in self.loss_names):
            group_logit = self.group_head(head_input, training=training)
        elif not self.group_head.built:  # its weights exist, as in every saved model
            self.group_head.build([part.shape for part in head_input])
        individual = None
        if self.individual_preference is not None:
            individual = (self.individual_preference.factored(inputs["personal"],
                                                              training=training)
                          if factored and self.individual_units
                          else self.individual_preference(inputs["personal"],
                                                          training=training))
        backbone_logit = inputs.get("logit")
        base = inputs["hidden"]
        if self.base == "embeddings":  # E [B, F, d], trained through the strategy
            base = inputs["embeddings"]
            base = tf.reshape(base, [-1, base.shape[1] * base.shape[2]])
        heads = {}
        if self.strategy == "ensemble":
            average_group_logit = group_logit  # L_g's pass, unless the masks differ
            if prediction_group is not group:  # training with noisy_prediction=False
                average_group_logit = self.group_head([prediction_group, item],
                                                      training=training)
            logit, heads = self.combiner(base, prediction_group, individual, item=item,
                                         group_logit=average_group_logit,
                                         backbone_logit=backbone_logit,
                                         training=training, return_heads=True)
        else:
            logit = self.combiner(base, prediction_group, individual, item=item,
                                  group_logit=group_logit, backbone_logit=backbone_logit,
                                  training=training)
        if self.residual:
            if backbone_logit is None:
                raise ValueError("GPRec: residual=True needs inputs['logit'], the backbone's")
            logit = backbone_logit + self.residual_scale * logit

        losses = {}
        if labels is not None:
            labels = tf.cast(tf.reshape(labels, [-1, 1]), tf.float32)
            if "gprec_backbone_loss" in self.loss_names:
                if backbone_logit is None:
                    raise ValueError("GPRec: backbone_weight > 0 needs inputs['logit'], the "
                                     "backbone head's logit (or set backbone_weight=0)")
                losses["gprec_backbone_loss"] = self.backbone_weight * _bce(labels,
                                                                            backbone_logit)
            if "gprec_group_loss" in self.loss_names:
                losses["gprec_group_loss"] = self.group_weight * _bce(labels, group_logit)
            if "gprec_contrastive_loss" in self.loss_names:
                # The head as a fixed function: frozen weights, and no dropout either.
                contrast_logit = self.group_head([contrast, item], training=False,
                                                 frozen=True)
                if self.contrast == "paper":
                    losses["gprec_contrastive_loss"] = -self.contrast_weight * _bce(
                        labels, contrast_logit)
                else:
                    losses["gprec_contrastive_loss"] = self.contrast_weight * _bce(
                        1.0 - labels, contrast_logit)
            if "gprec_orthogonal_loss" in self.loss_names:
                losses["gprec_orthogonal_loss"] = self.orthogonal_weight * self.orthogonal(
                    group, individual)
        # Built here only if a caller reads them (unused ops leave the traced graph).
        return {"logit": logit, "losses": losses, "loss": self.report_losses(losses),
                "masks": masks,
                "group": materialize(group), "individual": materialize(individual),
                "heads": heads}

    def group_embeddings(self) -> dict[str, Any]:
        """The group tables as numpy: {"positive", "negative"} (dual) or {"table"}."""
        if isinstance(self.group_table, DualGroupEmbedding):
            return {"positive": self.group_table.positive.numpy(),
                    "negative": self.group_table.negative.numpy()}
        return {"table": self.group_table.table.numpy()}

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> GPRec:
        """A GPRec layer in a named form (`PRESETS`), with `overrides` on top.

        Example:
          gprec = GPRec.from_preset("recommended", groups=40, embedding_dim=32)
          gprec = GPRec.from_preset("recommended", strategy="input")
        """
        return cls(**preset_options(preset, **overrides))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "temperature": self.temperature,
                "reduce": self.reduce, "strategy": self.strategy,
                "group_embedding": self.group_embedding, "individual": self.individual,
                "embedding_dim": self.embedding_dim,
                "classifier_units": list(self.classifier_units),
                "classifier_shared": self.classifier_shared,
                "head_units": list(self.head_units),
                "individual_units": list(self.individual_units),
                "prediction_units": list(self.prediction_units), "dropout": self.dropout,
                "group_weight": self.group_weight, "contrast_weight": self.contrast_weight,
                "orthogonal_weight": self.orthogonal_weight,
                "backbone_weight": self.backbone_weight, "contrast": self.contrast,
                "dp_rank": self.dp_rank, "ensemble_average": self.ensemble_average,
                "ensemble_weights": self.ensemble_weights,
                "ensemble_backbone_gradient": self.ensemble_backbone_gradient,
                "output_bias": self.output_bias, "residual": self.residual,
                "stop_embedding_gradient": self.stop_embedding_gradient, "base": self.base,
                "group_init_stddev": self.group_init_stddev,
                "noisy_prediction": self.noisy_prediction, "add_losses": self.add_losses}
