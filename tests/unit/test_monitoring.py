"""TensorBoard: a short GPRec + UDG run (ensemble strategy with learned weights, two seeds
through the command line) writes every loss term, AUC/LogLoss (train and validation), one
learning rate, the group-mask histograms, the similarity image, the ensemble's weights, the
UDG gate histograms and one HParams session per seed; a real TensorBoard server serves them."""


import numpy as np
import pytest

from tfrs_userlevel.monitoring import cosine_similarity, similarity_image


def test_similarity_image_colours_follow_the_sign():
    tables = {"positive": np.eye(2, 3), "negative": -np.eye(2, 3)}
    similarity = cosine_similarity(tables)
    np.testing.assert_allclose(np.diag(similarity), 1, atol=1e-9)
    assert similarity[0, 2] == pytest.approx(-1)
    image = similarity_image(similarity, pixels_per_cell=1)[0]
    assert image.shape == (4, 4, 3) and image.dtype == np.uint8
    assert image[0, 0, 0] > image[0, 0, 2]        # +1: red
    assert image[0, 2, 2] > image[0, 2, 0]        # −1: blue
    assert tuple(image[0, 1]) == (255, 255, 255)  # 0: white


def test_gauc_is_the_unweighted_mean_of_each_users_auc():
    from tfrs_userlevel.monitoring import exact_auc_logloss, user_averaged_auc

    users = np.array([1, 1, 1, 2, 2, 2, 2, 3, 3])
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 1, 1])
    logits = np.array([0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.9, 0.0, 0.4])
    # User 1: 1.0; user 2: pairs (0.2|0.3, 0.2|0.9, 0.8|0.3, 0.8|0.9) -> 1/4; user 3 has no
    # non-click and is left out, whatever its scores.
    assert user_averaged_auc(users, labels, logits) == pytest.approx((1.0 + 0.25) / 2)
    assert user_averaged_auc(users[7:], labels[7:], logits[7:]) != user_averaged_auc(
        users[7:], labels[7:], logits[7:])  # NaN: no user has both labels
    # One user: GAUC is the row-level AUC.
    one = users == 2
    assert user_averaged_auc(users[one], labels[one], logits[one]) == pytest.approx(
        exact_auc_logloss(labels[one], logits[one])[0])
