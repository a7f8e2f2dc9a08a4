"""The TFRS ranking model: lookup -> embeddings -> backbone -> head (+ user level).

`RankingModel` is a `tfrs.Model` whose loss is a `tfrs.tasks.Ranking`
(binary cross-entropy on logits) plus any number of named auxiliary losses.

Auxiliary-loss hook: a `user_level` layer (GPRec, or a layer of your own)
is called with a dict of "embeddings" E [B, F, d], "item" [B, F_item, d],
"user" [B, F_user, d], "personal" [B, F_personal, d], "hidden" h [B, H],
the backbone's "logit" [B, 1] and, when computing a loss, "labels" [B, 1];
it returns
`{"logit": [B, 1], "losses": {name: weighted scalar}}`; it declares the names
in a `loss_names` attribute. Each term is added to the training loss and
logged as its own metric (`<name>`, and `val_<name>` on validation), so
early stopping and TensorBoard see every term. This avoids TFRS's `add_loss`
route, which only shows up as an undifferentiated `regularization_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow_recommenders as tfrs

from tfrs_userlevel import metrics as metrics_lib
from tfrs_userlevel.backbones.dien import NegativeItemSampler
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.embedding import FieldEmbedding
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.field_views import FieldViews
from tfrs_userlevel.lookup import FeatureLookup
from tfrs_userlevel.loss_terms import LossTerms
from tfrs_userlevel.networks import build_network, domain_ids

DENSE_GRADIENT_MAX_PARAMETERS = 1 << 22


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class RankingModel(tfrs.Model):
    """CTR ranking model over raw features.

    Args:
      feature_spec: `FeatureSpec` or its config (list of field dicts).
      vocabularies: Field name -> vocabulary, from
        `FeatureSpec.build_vocabularies` on the training split.
      backbone: A `backbones.Backbone` (E [B, F, d] -> {"hidden": h [B, H],
        "logit": [B, 1]}, its own head included), a user-modeling baseline
        (`baselines.UserModelingBackbone`, which also receives the user context),
        or a config dict `{"name": "mlp" | "mmoe" | ..., ...options}`; from a
        dict, the head's bias starts at logit(p̄) unless "output_bias" is given,
        and a baseline that divides users by a field gets that field's number
        of values as `num_domains`.
      embedding_dim: d.
      embedding_l2: L2 penalty on the batch's embeddings.
      positive_rate: Training positive rate p̄ (RIG uses it; see `backbone`).
      user_level: Optional user-level layer (see the module docstring).
      gating: Optional `udg.UserDependentGating`: per-layer gates of the
        backbone's MLP, computed before the backbone from the item fields,
        the pooled click history and the user (UDG, docs/udg.md).
      dense_embedding_gradients: Turn the embedding table's sparse gradient
        into a dense one before the optimizer step. For tables of up to a few
        million parameters this is faster on CPU (one dense Adam update instead
        of scatters over B·F rows) and is exact Adam (duplicate ids are summed
        before the second moment). None: only when the table has at most
        `DENSE_GRADIENT_MAX_PARAMETERS` parameters.

    Call:
      features: dict of raw features (name -> [B] tensor), as the dataset
        and the serving signature spell them.

    Returns:
      probability: float32 [B, 1].

    Training data: `(lookup_output, labels)` where `lookup_output` is
    `model.lookup(raw)` (computed once by `tfrs_userlevel.data`) and labels
    are float32 [B, 1] in {0, 1}.
    """

    def __init__(self, feature_spec, vocabularies: Mapping[str, list], backbone=None,
                 embedding_dim: int = 16, embedding_l2: float = 0.0,
                 positive_rate: float = 0.5, user_level: keras.layers.Layer | None = None,
                 dense_embedding_gradients: bool | None = None,
                 gating: keras.layers.Layer | None = None, **kwargs):
        super().__init__(**kwargs)
        self.feature_spec = (feature_spec if isinstance(feature_spec, FeatureSpec)
                             else FeatureSpec.from_config(feature_spec))
        self.vocabularies = {k: list(v) for k, v in vocabularies.items()}
        self.embedding_dim = int(embedding_dim)
        self.embedding_l2 = float(embedding_l2)
        self.positive_rate = float(positive_rate)
        self.lookup = FeatureLookup(self.feature_spec.get_config(), self.vocabularies)
        self.embedding = FieldEmbedding(self.feature_spec.get_config(), self.lookup.total_size,
                                        embedding_dim, l2=embedding_l2)
        backbone = build_network(backbone, self.feature_spec, self.vocabularies,
                                 self.positive_rate)
        self.backbone = backbone
        self._domain_column, self._domain_offset = domain_ids(backbone, self.feature_spec,
                                                              self.vocabularies, self.lookup)
        # What the parts read from the one input structure (`model_inputs`): the backbone
        # says it in `requires`; GPRec and UDG read the embeddings by field role.
        self._needs = set(backbone.requires) - {"gates"}
        if user_level is not None or gating is not None:
            self._needs |= {"item", "user", "personal"}
        # Backbones with a wide / first-order part get one weight per id, looked up like E.
        self.first_order = (
            FieldEmbedding(self.feature_spec.get_config(), self.lookup.total_size, 1,
                           l2=embedding_l2, name="first_order")
            if "first_order" in self._needs else None)
        # Layers with named auxiliary terms (`LossTerms`) return them; the trackers below
        # log them, and adding them through add_loss too would count them twice.
        terms = [(role, layer) for role, layer in (("backbone", backbone),
                                                    ("user_level", user_level))
                 if isinstance(layer, LossTerms)]
        for role, layer in terms:
            if layer.add_losses:
                raise ValueError(
                    f"RankingModel: the {role} layer has add_losses=True; RankingModel adds "
                    "the terms it returns, so they would count twice. Build it with "
                    "add_losses=False.")
            layer.report_to_model = False
        self.user_level = user_level
        self.gating = gating
        if gating is not None and "gates" not in backbone.requires:
            raise ValueError(
                f"RankingModel: backbone {type(backbone).__name__} takes no UDG gates; UDG "
                "needs a backbone whose prediction network is an MLP (mlp, wd, deepfm, ipnn, "
                "opnn, din, dien)")
        behavior_fields = [f for f in self.feature_spec.fields if f.role == "behavior"]
        self._behavior_field = behavior_fields[0] if behavior_fields else None
        if "behavior" in self._needs and self._behavior_field is None:
            raise ValueError(
                f"RankingModel: backbone {type(backbone).__name__} needs a click history: add a "
                "behavior field to the feature spec (train.py --history-length N)")
        if self._behavior_field is not None:
            field = self._behavior_field
            self._behavior_position = self.feature_spec.names.index(field.name)
            # The target item in the history's layout: the item field, then its attributes.
            self._query_positions = [self.feature_spec.names.index(n) for n in
                                     (field.shared_vocabulary_with, *field.attributes)]
        if "negatives" in self._needs:
            self._negative_items = NegativeItemSampler(self._behavior_field, self.vocabularies,
                                                       self.lookup.offsets)
        personal = self.feature_spec.positions("user_personal")
        self._user_field = self.feature_spec.fields[personal[0]].name if personal else None
        if self._user_field is not None:
            # Column of the user id in ids["ids"], and the fused id of its OOV row.
            self._user_column = self.lookup.single_fields.index(self._user_field)
            self._user_offset = self.lookup.oov_id(self._user_field)
        if gating is not None:
            if self._user_field is None:
                raise ValueError("RankingModel: UDG needs a user_personal (user id) field")
            expected = self.lookup.vocabulary_size(self._user_field)
            if gating.num_users != expected:
                raise ValueError(f"RankingModel: the UDG table has {gating.num_users} users, "
                                 f"the vocabulary of {self._user_field!r} has {expected}")
        self._profile_columns = [self.lookup.single_fields.index(f.name)
                                 for f in self.feature_spec.fields
                                 if f.role == "user_other" and not f.multivalued]
        if dense_embedding_gradients is None:
            dense_embedding_gradients = (
                self.lookup.total_size * self.embedding_dim <= DENSE_GRADIENT_MAX_PARAMETERS)
        self.dense_embedding_gradients = bool(dense_embedding_gradients)
        # Per-example losses, averaged by `compute_loss` over the GLOBAL batch: Keras'
        # default AUTO reduction raises inside tf.distribute strategies, and a local mean
        # would be summed over replicas by the gradient all-reduce.
        self.task = tfrs.tasks.Ranking(
            loss=keras.losses.BinaryCrossentropy(from_logits=True,
                                                 reduction=keras.losses.Reduction.NONE),
            metrics=metrics_lib.ranking_metrics(self.positive_rate))
        self.task.built = True  # no weights; a model that only serves never calls it
        self._item_positions = self.feature_spec.positions("item")
        self._user_positions = self.feature_spec.positions("user_personal", "user_other")
        self._personal_positions = self.feature_spec.positions("user_personal")
        self._field_groups = FieldViews(len(self.feature_spec.fields), {
            "item": self._item_positions, "user": self._user_positions,
            "personal": self._personal_positions})
        # A user-level layer declares the names of the terms it returns in `loss_names`.
        self.loss_names = (("main_loss",) + tuple(backbone.loss_names)
                           + tuple(getattr(user_level, "loss_names", ())))
        self._loss_trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss",) + self.loss_names
            + ("regularization_loss",)
        }
        # With a user-level layer, the backbone's own logit is scored too (validation
        # only): "backbone_auc", which a schedule can follow (TrainConfig.schedule_monitor).
        self._backbone_auc = (keras.metrics.AUC(num_thresholds=metrics_lib.AUC_THRESHOLDS,
                                                from_logits=True, name="backbone_auc")
                              if user_level is not None else None)

    # -- forward -----------------------------------------------------------

    def score(self, ids: Mapping[str, tf.Tensor], training: bool = False,
              labels: tf.Tensor | None = None,
              udg_embedding: tf.Tensor | None = None) -> dict[str, Any]:
        """Looked-up ids -> {"logit": [B, 1], "losses": {name: scalar}}.

        The user-level layer computes its auxiliary losses only when `labels`
        are given; its whole output (GPRec: "masks" [B, G, 2], "group",
        "individual") is under "user_level" when there is one, and the backbone's
        own logit [B, 1] under "backbone_logit"; with UDG the
        gates (list of [B, width_l]) are under "gates"; `udg_embedding`
        [B, udg_dim] replaces the UDG user embeddings (meta-learning).
        """
        inputs = self.model_inputs(ids)
        gates_out, gates = [], None
        if self.gating is not None:
            gating_inputs = {
                "item": inputs["item"],
                "user_index": self.user_index(ids),
                "profile": tf.gather(ids["ids"], self._profile_columns, axis=1),
            }
            if self._behavior_field is not None:
                gating_inputs["behavior"] = inputs["embeddings"][:, self._behavior_position]
            if udg_embedding is not None:
                gating_inputs["user_embedding"] = udg_embedding

            def gates(widths):
                # Keras may trace the backbone more than once (saving); keep the last gates.
                gates_out[:] = self.gating(gating_inputs, widths=widths, training=training)
                return list(gates_out)

        backbone = self.backbone(inputs, training=training, gates=gates)
        hidden, logit = backbone["hidden"], backbone["logit"]
        losses = dict(backbone.get("losses", {}))
        extra = {"gates": gates_out} if self.gating is not None else {}
        if self.user_level is None:
            return {"logit": logit, "losses": losses, **extra}
        layer_inputs = {name: inputs[name] for name in ("embeddings", "item", "user", "personal")}
        layer_inputs.update(hidden=hidden, logit=logit)
        if labels is not None:
            layer_inputs["labels"] = labels
        output = self.user_level(layer_inputs, training=training)
        return {"logit": output["logit"], "losses": {**losses, **output.get("losses", {})},
                "user_level": output, "backbone_logit": logit, **extra}

    def model_inputs(self, ids: Mapping[str, tf.Tensor]) -> dict[str, Any]:
        """The one input structure (`tfrs_userlevel.model_inputs`) of looked-up `ids`: the
        embeddings and every entry the backbone, the user-level layer and UDG read."""
        embeddings = self.embedding(ids)
        inputs = {"embeddings": embeddings}
        if "first_order" in self._needs:
            inputs["first_order"] = self.first_order(ids)
        if "behavior" in self._needs:
            sequence, mask = self.embedding.sequence(ids, self._behavior_field.name)
            query = tf.gather(embeddings, self._query_positions, axis=1)
            inputs["behavior"] = {"sequence": sequence, "mask": mask,
                                  "query": tf.reshape(query, [-1, sequence.shape[-1]])}
            if "negatives" in self._needs:
                inputs["behavior"]["negatives"] = tf.ensure_shape(self._negative_items(
                    ids[self._behavior_field.name], self.embedding.table), sequence.shape)
        if self._needs & {"item", "user", "personal"}:
            inputs.update(self._field_groups(embeddings))
        if "domain" in self._needs:
            # Fused id -> value index of the domain field (0 = its OOV bucket).
            inputs["domain"] = ids["ids"][:, self._domain_column] - self._domain_offset
        return inputs

    @property
    def user_column(self) -> int:
        """The column of the user id in the lookup's `ids["ids"]` [B, S]."""
        self._needs_user_field("user_column")
        return self._user_column

    @property
    def user_offset(self) -> int:
        """The fused id of the user-id field's OOV row: user `i` of the vocabulary has
        fused id `user_offset + i` (rows of `embedding.table`)."""
        self._needs_user_field("user_offset")
        return self._user_offset

    @property
    def profile_columns(self) -> list[int]:
        """The columns of the single-valued user_other fields (the profile) in `ids["ids"]`."""
        return list(self._profile_columns)

    @property
    def behavior_field(self):
        """The click-history field (`features.Field`), or None."""
        return self._behavior_field

    def _needs_user_field(self, what: str) -> None:
        if self._user_field is None:
            raise ValueError(f"RankingModel.{what}: the feature spec has no user_personal "
                             "(user id) field")

    def user_index(self, ids: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """int32 [B]: each row's user id as an index of its vocabulary (0 = unseen user)."""
        return ids["ids"][:, self._user_column] - self._user_offset

    def call(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return tf.sigmoid(self.score(self.lookup(features), training=training)["logit"])

    # -- losses and steps --------------------------------------------------

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """This replica's share of the training loss (main + auxiliary terms).

        Under a `tf.distribute` strategy with R replicas in sync, the gradient
        all-reduce SUMS the replicas' gradients, so each replica returns its
        part of the global-batch mean: the main loss summed over its rows and
        divided by the global batch size, and each auxiliary term (a mean over
        its rows) divided by R. Without a strategy (R = 1) this is the plain
        mean. The trackers record the unscaled values.
        """
        ids, labels = inputs
        output = self.score(ids, training=training, labels=labels)
        per_example = self.task(labels=labels, predictions=output["logit"], training=training,
                                compute_metrics=not training)
        if not training and self._backbone_auc is not None:
            self._backbone_auc.update_state(labels, output["backbone_logit"])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        main = tf.nn.compute_average_loss(per_example)
        self._loss_trackers["main_loss"].update_state(main * replicas)
        total = main
        for name, value in output["losses"].items():
            self._loss_trackers[name].update_state(value)
            total = total + value / replicas
        return total

    def _total_loss(self, inputs, training: bool) -> tf.Tensor:
        loss = self.compute_loss(inputs, training=training)
        regularization = tf.add_n(self.losses) if self.losses else tf.constant(0.0)
        self._loss_trackers["regularization_loss"].update_state(regularization)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        total = loss + tf.nn.scale_regularization_loss(regularization)
        self._loss_trackers["loss"].update_state(total * replicas)
        return total

    def train_step(self, inputs):
        with tf.GradientTape() as tape:
            total = self._total_loss(inputs, training=True)
        gradients = tape.gradient(total, self.trainable_variables)
        if self.dense_embedding_gradients:
            gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                         for g in gradients]
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        # Each replica's trackers saw its own rows, and Keras SUMS the replicas' logs
        # (distribute_reduction_method "auto"): each gives its share of the mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return {name: tracker.result() / replicas
                for name, tracker in self._loss_trackers.items()}

    def test_step(self, inputs):
        self._total_loss(inputs, training=False)
        return {metric.name: metric.result() for metric in self.metrics}

    def predict_step(self, data):
        ids = data[0] if isinstance(data, tuple) else data
        return tf.sigmoid(self.score(ids, training=False)["logit"])

    @property
    def metrics(self):
        extra = [self._backbone_auc] if self._backbone_auc is not None else []
        return list(self._loss_trackers.values()) + list(self.task.metrics) + extra

    # -- serialization -------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_spec": self.feature_spec.get_config(),
            "vocabularies": self.vocabularies,
            "backbone": keras.layers.serialize(self.backbone),
            "embedding_dim": self.embedding_dim,
            "embedding_l2": self.embedding_l2,
            "positive_rate": self.positive_rate,
            "dense_embedding_gradients": self.dense_embedding_gradients,
            "user_level": (keras.layers.serialize(self.user_level)
                           if self.user_level is not None else None),
            "gating": (keras.layers.serialize(self.gating)
                       if self.gating is not None else None),
            "name": self.name,
        }

    def example_features(self, batch_size: int = 1) -> dict[str, tf.Tensor]:
        """Placeholder raw features of the right dtypes (empty strings, zeros)."""
        features = {}
        for field in self.feature_spec.fields:
            dtype = tf.string if field.dtype == "string" else tf.int64
            shape = [batch_size, field.max_length] if field.role == "behavior" else [batch_size]
            features[field.name] = tf.zeros(shape, dtype)
        return features

    def get_build_config(self) -> dict[str, Any]:
        return {"raw_features": True}

    def build_from_config(self, config: dict[str, Any]) -> None:
        # Keras would build with float placeholders; raw features are strings and ints.
        self(self.example_features())

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RankingModel:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        if config.get("user_level") is not None:
            config["user_level"] = keras.layers.deserialize(config["user_level"])
        if config.get("gating") is not None:
            config["gating"] = keras.layers.deserialize(config["gating"])
        return cls(**config)
