"""The Verifier's effect on label quality, measured against an oracle (the report's Verifier table)."""

import pandas as pd
import pytest

from rzero_lib.report.label_metrics import verifier_table


def test_verifier_table_against_an_oracle():
    verdicts = pd.DataFrame({
        "iteration": [1, 1, 1, 1, 2, 2],
        "question": ["What is 1+1?", "What is 2+2?", "What is 3+3?", "Prove it", "What is 5+5?", "What is 6+6?"],
        "majority_answer": ["2", "5", "6", "1", "10", "13"],
        "confidence": [1.0, 0.0, 0.75, 1.0, 0.5, 0.5],
        "p_hat": [0.5, 0.7, 0.4, 0.6, 0.5, 0.5],
    })
    oracle = ["2", "4", "6", None, "10", "12"]  # the fourth question has no oracle answer
    table = verifier_table(verdicts, oracle, threshold=0.5).set_index("iteration")
    one, two = table.loc[1], table.loc[2]
    assert (one.band_questions, one.covered, one.without_n, one.with_n) == (4, 3, 3, 2)
    assert one.without_accuracy == pytest.approx(2 / 3) and one.with_accuracy == 1.0
    assert one.wrong_labels_removed == 1.0 and one.right_labels_lost == 0.0
    assert (two.with_n, two.with_accuracy, two.without_accuracy) == (2, 0.5, 0.5)
    # The vote's own choice at the same size: iteration 1's two highest p̂ (0.7 wrong, 0.5 right).
    assert (one.top_p_hat_accuracy, two.top_p_hat_accuracy) == (0.5, 0.5)
