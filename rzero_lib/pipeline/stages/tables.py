"""The columns of the stage tables that later stages read, and the Solver's training table."""

from __future__ import annotations

import pandas as pd

VOTE_COLUMNS = ["question_id", "iteration", "question", "challenger_answer", "responses", "answers",
                "majority_answer", "p_hat", "majority_count", "num_answered", "group_answers", "group_counts",
                "drop_reason", "kept", "difficulty"]  # difficulty: Domain.difficulty (NaN where none)
TRAIN_COLUMNS = ["question_id", "question", "label", "p_hat", "weight"]

VERDICT_COLUMNS = ["question_id", "question", "majority_answer", "p_hat", "solution", "verdicts", "yes", "no",
                   "unparsed", "confidence", "kept", "weight", "drop_reason"]



def solver_train_table(rows: pd.DataFrame, label_column: str, weight) -> pd.DataFrame:
    """The Solver's training table (TRAIN_COLUMNS) from the kept rows of a vote or verdict table."""
    return pd.DataFrame({"question_id": rows["question_id"], "question": rows["question"],
                         "label": rows[label_column], "p_hat": rows["p_hat"], "weight": weight},
                        columns=TRAIN_COLUMNS)
