"""The experiments on SYNTHETIC planted worlds (`datasets.planted`), declared before any
result is read.

The UDG world: `AttributeWeightingWorld(seed=0)`, 300,000 rows (80/10/10). The
base model and UDG see the same fields. Rows: the MLP; the MLP with UDG; and
two MLPs with more parameters than the MLP, as the UDG paper's Table 3
compares: hidden layers 128-64-32, and embeddings of 32. Each against the MLP,
Welch's one-sided test over 5 training seeds. What would show UDG's gates
work: UDG above every MLP, with p < 0.01 against the MLP of the same widths.

Declared next, after the first rows were read (UDG tied the MLP): UDG with
signed gates (`gate_activation="tanh"`), and an MLP of about UDG's parameter
count (hidden 256-128-64). The signed gates win if they are above every
MLP with p < 0.01 against both the MLP of the same widths and the MLP of
UDG's size (`PARAMETER_MATCHED`). With them, UDG in the library's recommended
form (gate scale 2, L2 3e-4 on its user table), against the same bar.

Declared after those rows were read (neither gate form beat the MLP in the
signed world): the same world with 200 users instead of 2,000 (`planted_udg_dense`),
so each user has about 1,200 training rows instead of 120. If a user's
weights are hard to estimate from 120 rows, every model pays for it alike;
with 1,200, what is left is the functional form, which UDG's gates can
express and an MLP has to approximate. Same rows and the same bar.

Declared after the dense world's rows were read (every model 0.003 or more
below the structure-known fit, so the fit itself may be what limits them):
the MLP's regularisation, tuned for ML-1M (embedding L2 3e-4, dropout 0.2),
searched on validation in the UDG world for the MLP and for UDG apart
(`SEARCH_ROWS`, one seed); each one's best is then run over 5 seeds against
the same bar.

Beside each world's table: the structure-known fit (`structure_known_auc`),
a logistic regression that is told the planted form and the attribute scores
and learns only each user's weights and each item's bias from the training
rows; it shows what the rows allow a model of the right form to reach.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.monitoring import exact_auc_logloss
from tfrs_userlevel.significance import one_sided_ttest

UDG_WORLD_ROWS = 300_000
# The worlds by dataset name: the UDG world, and the same world with every user's weights
# made positive (`signed=False`), which tells whether the sign of the weights is what
# UDG's gates, sigmoids in (0, gate_scale), cannot follow.
UDG_WORLDS = {"planted_udg": {}, "planted_udg_positive": {"signed": False},
              "planted_udg_dense": {"users": 200}}
PARAMETER_MATCHED = "MLP, hidden 256-128-64"
UDG_ROWS = (
    ("MLP", {}),
    ("MLP + UDG", {"user_level": "udg"}),
    ("MLP, hidden 128-64-32", {"hidden_units": (128, 64, 32)}),
    ("MLP, embedding 32", {"embedding_dim": 32}),
    ("MLP + UDG, signed gates", {"user_level": "udg", "gate_activation": "tanh"}),
    (PARAMETER_MATCHED, {"hidden_units": (256, 128, 64)}),
    ("MLP + UDG, recommended preset", {"user_level": "udg", "gate_scale": 2.0,
                                       "udg_l2": 3e-4}),
    # The best validation AUC of `SEARCH_ROWS` was dropout 0 (embedding L2 3e-4 kept) for
    # both the MLP and UDG (results/planted/planted_udg_search.md); the MLP of UDG's size
    # takes the MLP's choice.
    ("MLP, dropout 0", {"dropout": 0.0}),
    ("MLP + UDG, dropout 0", {"user_level": "udg", "dropout": 0.0}),
    (f"{PARAMETER_MATCHED}, dropout 0", {"hidden_units": (256, 128, 64), "dropout": 0.0}),
)
# Each UDG row's MLP of about its parameter count, with the same regularisation; the
# section tests the row against it.
SAME_SIZE_MLP = {"MLP + UDG": PARAMETER_MATCHED,
                 "MLP + UDG, signed gates": PARAMETER_MATCHED,
                 "MLP + UDG, recommended preset": PARAMETER_MATCHED,
                 "MLP + UDG, dropout 0": f"{PARAMETER_MATCHED}, dropout 0"}
# The regularisation searched for the MLP and UDG (validation AUC, seed 2024).
SEARCH_ROWS = tuple(
    (f"{model}, embedding L2 {l2:g}, dropout {dropout:g}",
     {**overrides, "embedding_l2": l2, "dropout": dropout})
    for model, overrides in (("MLP", {}), ("MLP + UDG", {"user_level": "udg"}))
    for l2 in (3e-4, 3e-5, 0.0) for dropout in (0.2, 0.0))
# The rows of the follow-up worlds (positive weights, dense users).
FOLLOW_UP_ROWS = ("MLP", "MLP + UDG", "MLP, hidden 128-64-32", "MLP + UDG, signed gates",
                  PARAMETER_MATCHED, "MLP + UDG, recommended preset")


def udg_world(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS
              ) -> tuple[AttributeWeightingWorld, dict]:
    """The UDG world `name` (`UDG_WORLDS`) and its splits."""
    world = AttributeWeightingWorld(seed=0, **UDG_WORLDS[name])
    return world, world.splits(rows)


def udg_world_data(config) -> tuple[dict, list]:
    """(splits, feature spec) of the UDG world `config.dataset`, for `Runner(loader=...)`."""
    world, splits = udg_world(config.dataset)
    return splits, world.feature_spec


@functools.cache
def planted_auc(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS) -> float:
    """The test AUC of the planted probability itself: the ceiling of any model (computed
    once per world; a table's section is rewritten after every row)."""
    _, splits = udg_world(name, rows)
    test = splits["test"]
    return exact_auc_logloss(test["label"], test["planted_probability"])[0]


STRUCTURE_KNOWN_L2 = (1e-7, 1e-6, 1e-5, 1e-4)


@functools.cache
def structure_known_fit(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS,
                        by_segment: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The structure-known fit of world `name`: logit = Σ_a w_{u,a}·x_a + b_i + c with
    x_a = scale·s_a(attr_a(i))/√A the planted, known attribute scores, w and b fitted by
    L-BFGS on the training rows with an L2 penalty chosen by validation AUC among
    `STRUCTURE_KNOWN_L2`. With `by_segment`, w_u = v_{segment(u)} + δ_u: a weight vector
    per segment, not penalised, and the penalty on each user's deviation δ_u, so a user
    with few rows is pulled to its segment's weights rather than to zero.

    Returns:
      (fitted weights float [users, A], fitted item biases plus c float [items],
      test AUC, chosen L2).
    """
    from scipy.optimize import minimize

    world, splits = udg_world(name, rows)
    users, items, attributes = world.users, world.items, world.attributes
    segment = world.segment
    segments = int(segment.max()) + 1 if by_segment else 0
    penalised = users * attributes + items               # δ (or w), then b; then c, v

    def features(part):
        item = part["item_id"] - 1
        scores = world.value_score[np.arange(attributes), world.item_values[item]]
        return (part["user_id"] - 1, item, world.scale * scores / np.sqrt(attributes),
                part["label"].astype(np.float64))

    def user_weights(theta):
        weights = theta[:users * attributes].reshape(users, attributes)
        if segments:
            weights = weights + theta[penalised + 1:].reshape(segments, attributes)[segment]
        return weights

    def logits(theta, data):
        user, item, x, _ = data
        return (np.einsum("na,na->n", user_weights(theta)[user], x)
                + theta[users * attributes:penalised][item] + theta[penalised])

    train = features(splits["train"])

    def fit(l2):
        user, item, x, label = train

        def loss_and_gradient(theta):
            z = logits(theta, train)
            shrunk = theta[:penalised]
            loss = np.mean(np.logaddexp(0.0, z) - label * z) + l2 * shrunk @ shrunk
            g = (1.0 / (1.0 + np.exp(-z)) - label) / len(label)
            g_weights = np.zeros((users, attributes))
            np.add.at(g_weights, user, g[:, None] * x)
            g_segments = np.zeros((segments, attributes))
            if segments:
                np.add.at(g_segments, segment, g_weights)
            gradient = np.concatenate([g_weights.ravel(),
                                       np.bincount(item, g, minlength=items), [g.sum()],
                                       g_segments.ravel()])
            gradient[:penalised] += 2 * l2 * shrunk
            return loss, gradient

        return minimize(loss_and_gradient,
                        np.zeros(penalised + 1 + segments * attributes), jac=True,
                        method="L-BFGS-B", options={"maxiter": 500}).x

    validation, test = features(splits["validation"]), features(splits["test"])
    fits = {l2: fit(l2) for l2 in STRUCTURE_KNOWN_L2}
    chosen = max(fits, key=lambda l2: exact_auc_logloss(validation[3],
                                                        logits(fits[l2], validation))[0])
    theta = fits[chosen]
    return (user_weights(theta), theta[users * attributes:penalised] + theta[penalised],
            exact_auc_logloss(test[3], logits(theta, test))[0], chosen)


def structure_known_auc(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS
                        ) -> tuple[float, float]:
    """(test AUC, chosen L2) of the structure-known fit of world `name`
    (`structure_known_fit`)."""
    return structure_known_fit(name, rows)[2:]


def udg_section(rows: Sequence[dict]) -> str:
    """Parameters and AUC of each row beside the planted ceiling."""
    name = rows[0]["dataset"] if rows else "planted_udg"
    lines = ["SYNTHETIC data: `tfrs_userlevel.datasets.planted.AttributeWeightingWorld"
             f"({', '.join(f'{k}={v}' for k, v in UDG_WORLDS[name].items())})`.", "",
             f"Test AUC of the planted probability (the ceiling): {planted_auc(name):.4f}.",
             "Test AUC of the structure-known fit (the planted form and attribute scores "
             "given, each user's weights and each item's bias fitted on the training rows, "
             "L2 {1:g} chosen on validation): {0:.4f}.".format(*structure_known_auc(name)),
             "",
             f"| model | parameters | test AUC | − MLP | p vs {PARAMETER_MATCHED} |",
             "|---|---:|---:|---:|---:|"]
    base = rows[0]["auc_mean"] if rows else float("nan")
    by_name = {r["model"]: r for r in rows}
    for r in rows:
        p = ""
        same_size = by_name.get(SAME_SIZE_MLP.get(r["model"], ""))
        if same_size is not None and len(r["test_auc"]) > 1:
            p = f"{one_sided_ttest(r['test_auc'], same_size['test_auc']):.2g}"
        lines.append(f"| {r['model']} | {r.get('parameters', 0):,} | {r['auc_mean']:.4f} | "
                     f"{r['auc_mean'] - base:+.4f} | {p} |")
    lines += ["", f"p vs {PARAMETER_MATCHED}: Welch's one-sided test that the UDG row is "
              "above the MLP of about its parameter count and the same regularisation "
              "(`planted_worlds.SAME_SIZE_MLP`), over the same seeds."]
    return "\n".join(lines)

