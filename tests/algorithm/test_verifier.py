"""The Verifier: verdict parsing, policies and the label-quality measurement on hand-built tables
(its stage: tests/pipeline/test_verification_stage.py)."""

import pytest

from rzero_lib.stats import wilson_interval
from rzero_lib.verifier import (
    apply_policy,
    confidence_of,
    parse_verdict,
    supporting_response,
    verifier_label_metrics,
)


@pytest.mark.parametrize("text, verdict", [
    ("checked it. \\boxed{yes}", True), ("\\boxed{No}", False), ("\\boxed{\\text{yes}}", True),
    ("I think so", None), ("\\boxed{42}", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


def test_confidence_and_policies():
    assert confidence_of([True, False, None, True]) == 0.5
    assert confidence_of([]) == 0.0
    keep = apply_policy(0.5, "threshold", 0.5)
    drop = apply_policy(0.25, "threshold", 0.5)
    assert (keep.kept, keep.weight, keep.reason) == (True, 1.0, None)
    assert (drop.kept, drop.weight, drop.reason) == (False, 0.0, "verifier_low_confidence")
    w = apply_policy(0.25, "weight")
    assert (w.kept, w.weight) == (True, 0.25)
    with pytest.raises(ValueError, match="policy"):
        apply_policy(0.5, "vote")
    with pytest.raises(ValueError, match="confidence"):
        apply_policy(1.5, "weight")


def test_supporting_response_ends_in_the_majority():
    responses = ["a \\boxed{3}", "b \\boxed{4}", "c \\boxed{4}"]
    assert supporting_response(responses, ["3", "4", "4"], "4") == "b \\boxed{4}"
    assert supporting_response(responses, ["3", None, None], "4") is None


def test_label_metrics_on_a_hand_built_table():
    # 10 band-passing labels: 6 right, 4 wrong. Confidence ranks 5 right ones and 1 wrong one on top.
    correct = [1, 1, 1, 1, 1, 0, 1, 0, 0, 0]
    conf = [1.0, 1.0, 0.75, 0.75, 0.75, 0.5, 0.25, 0.25, 0.0, 0.0]
    m = verifier_label_metrics(correct, conf, threshold=0.5)
    assert m["without_verifier"]["n"] == 10 and m["without_verifier"]["accuracy"] == 0.6
    assert m["with_verifier"]["n"] == 6 and m["with_verifier"]["accuracy"] == pytest.approx(5 / 6)
    assert m["wrong_labels_removed"] == 0.75  # 3 of 4 wrong labels are below the threshold
    assert m["right_labels_lost"] == pytest.approx(1 / 6)
    assert m["weighted_accuracy"] == pytest.approx((1 + 1 + 0.75 * 3 + 0.25) / (2 + 2.25 + 0.5 + 0.5))
    lo, hi = m["with_verifier"]["ci_low"], m["with_verifier"]["ci_high"]
    assert (lo, hi) == pytest.approx(wilson_interval(5, 6))
    assert lo < 5 / 6 < hi
    # The vote's own confidence at the same size: the 6 highest p̂ (items 5, 8, 9, 7, 3, 4) hold 2 right labels.
    p_hat = [0.3, 0.3, 0.3, 0.4, 0.4, 0.7, 0.4, 0.6, 0.7, 0.7]
    by_vote = verifier_label_metrics(correct, conf, threshold=0.5, p_hat=p_hat)["top_p_hat"]
    assert by_vote["n"] == 6 and by_vote["accuracy"] == pytest.approx(2 / 6)
