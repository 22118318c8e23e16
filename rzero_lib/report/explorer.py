"""An interactive explorer over a run's voted questions (ipywidgets, imported only inside `explore`).

`explorer_table(run_dir)` lists every question of every finished voting stage
with the oracle's answer from the report's label sample (every question when
the oracle is exact and free); `filter_questions` is the pure filter behind the
widgets; `question_html(row)` shows one question, its m answers grouped by
equivalence and the raw responses, every string HTML-escaped (model output is
untrusted); `explore(run_dir)` is the widget.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from rzero_lib.answers import equivalent_many
from rzero_lib.engine.oracles import make_oracle
from rzero_lib.oracle import NoOracleError
from rzero_lib.pipeline.context import locate_run_dir
from rzero_lib.pipeline.rundir import RunDir
from rzero_lib.report.run_data import load_run_data
from rzero_lib.values import present

ORACLE_FILTERS = ("all", "agrees", "disagrees", "no oracle answer")
STATUS_FILTERS = ("all", "kept", "dropped")
MAX_LISTED = 500  # rows offered in the question list at once


def explorer_table(run_dir: str | Path | None) -> pd.DataFrame:
    """All voted questions with `oracle_answer`, `label_correct` (True/False/None) and `in_label_sample`.

    `run_dir` as a notebook's parameter (`locate_run_dir`). A question without a majority answer has no
    label, so its `label_correct` is None (neither agreeing nor disagreeing with the oracle).
    """
    run = RunDir.at(locate_run_dir(run_dir))
    votes = load_run_data(run).votes
    if votes.empty:
        return pd.DataFrame(columns=["iteration", "question_id", "question", "p_hat", "kept", "drop_reason",
                                     "oracle_answer", "label_correct", "in_label_sample"])
    votes = votes.sort_values(["iteration", "question_id"]).reset_index(drop=True)
    sample_path = run.report_dir / "label_sample.parquet"
    if sample_path.exists():
        sample = pd.read_parquet(sample_path, columns=["iteration", "question_id", "oracle_answer", "label_correct"])
        sample = sample.drop_duplicates(["iteration", "question_id"]).assign(in_label_sample=True)
        table = votes.merge(sample, on=["iteration", "question_id"], how="left")
        table["in_label_sample"] = table["in_label_sample"].fillna(False).astype(bool)
    else:
        table = votes.assign(oracle_answer=None, label_correct=None, in_label_sample=False)
    table["oracle_answer"] = table["oracle_answer"].astype(object).where(table["oracle_answer"].notna(), None)
    table["label_correct"] = table["label_correct"].astype(object).where(table["label_correct"].notna(), None)
    _fill_exact_oracle(run, table)
    table.loc[~table["majority_answer"].map(present), "label_correct"] = None
    return table


def _fill_exact_oracle(run, table: pd.DataFrame) -> None:
    """With an exact oracle (no model, no cost), answer every question the sample did not cover."""
    try:
        params = run.load_params()
        oracle = make_oracle(params, params.analysis.oracle)
    except (NoOracleError, ValueError):
        return
    if not oracle.exact:
        return
    todo = [i for i in table.index if not table.at[i, "in_label_sample"]]
    if not todo:
        return
    answers = oracle.answer_many([str(q) for q in table.loc[todo, "question"]])
    pairs, where = [], []
    for i, answer in zip(todo, answers):
        table.at[i, "oracle_answer"] = answer
        majority = table.at[i, "majority_answer"]
        if answer is not None and present(majority):
            pairs.append((majority, answer))
            where.append(i)
    for i, ok in zip(where, equivalent_many(pairs, timeout_s=params.voting.equivalence_timeout_s) if pairs else []):
        table.at[i, "label_correct"] = bool(ok)


def filter_questions(table: pd.DataFrame, *, iteration: int | None = None,
                     p_hat_range: tuple[float, float] = (0.0, 1.0), status: str = "all",
                     drop_reasons=None, oracle: str = "all") -> pd.DataFrame:
    """The rows of `explorer_table` that pass every filter.

    iteration: None for all; status: "all" | "kept" | "dropped"; drop_reasons:
    None or empty for all, else the reasons to show (use "kept" for kept rows);
    oracle: "all" | "agrees" | "disagrees" | "no oracle answer".
    """
    if status not in STATUS_FILTERS:
        raise ValueError(f"status must be one of {STATUS_FILTERS}, got {status!r}")
    if oracle not in ORACLE_FILTERS:
        raise ValueError(f"oracle must be one of {ORACLE_FILTERS}, got {oracle!r}")
    low, high = p_hat_range
    eps = 1e-9
    mask = (table["p_hat"] >= low - eps) & (table["p_hat"] <= high + eps)
    if iteration is not None:
        mask &= table["iteration"] == iteration
    kept = table["kept"].astype(bool)
    if status == "kept":
        mask &= kept
    elif status == "dropped":
        mask &= ~kept
    if drop_reasons:
        reasons = table["drop_reason"].where(table["drop_reason"].notna(), "kept")
        mask &= reasons.isin(list(drop_reasons))
    verdict = table["label_correct"]
    if oracle == "agrees":
        mask &= verdict.map(lambda v: v is True or v == True)  # noqa: E712 (numpy bools)
    elif oracle == "disagrees":
        mask &= verdict.map(lambda v: present(v) and not bool(v))
    elif oracle == "no oracle answer":
        mask &= ~table["oracle_answer"].map(present)
    return table[mask]


def _list(value) -> list:
    """A list from a Parquet list cell (numpy array, list or missing)."""
    return list(value) if present(value) else []


def _e(value) -> str:
    return html.escape("—" if not present(value) else str(value))


def question_html(row) -> str:
    """One question (a row of `explorer_table`) as escaped HTML."""
    answers = [a if present(a) else None for a in _list(row.get("answers"))]
    m = len(answers)
    groups = list(zip(_list(row.get("group_answers")), _list(row.get("group_counts"))))
    answered = row.get("num_answered")
    unanswered = m - (int(answered) if present(answered) else sum(a is not None for a in answers))
    verdict = row.get("label_correct")
    if not present(row.get("majority_answer")):
        agreement = "<i>no majority answer (no label to check)</i>"
    elif present(verdict):
        agreement = "<b style='color:green'>agrees</b>" if bool(verdict) else "<b style='color:#b00'>disagrees</b>"
    else:
        agreement = "<i>not checked</i>"
    status = "kept" if bool(row["kept"]) else f"dropped ({_e(row.get('drop_reason'))})"
    group_rows = "".join(
        f"<tr><td>{_e(a)}</td><td>{int(c)}</td><td>{'majority' if i == 0 else ''}</td></tr>"
        for i, (a, c) in enumerate(groups))
    if unanswered:
        group_rows += f"<tr><td><i>no boxed answer</i></td><td>{unanswered}</td><td></td></tr>"
    responses = _list(row.get("responses"))
    response_items = "".join(f"<li><code>{_e(a)}</code><pre style='white-space:pre-wrap;max-height:12em;"
                             f"overflow:auto'>{_e(r)}</pre></li>" for a, r in zip(answers, responses))
    return (
        f"<div style='font-family:sans-serif'>"
        f"<p><b>{_e(row['question_id'])}</b> (iteration {int(row['iteration'])}) — {status}</p>"
        f"<blockquote style='white-space:pre-wrap'>{_e(row['question'])}</blockquote>"
        f"<table>"
        f"<tr><td>majority answer</td><td><code>{_e(row.get('majority_answer'))}</code></td></tr>"
        f"<tr><td>p̂</td><td>{float(row['p_hat']):.2f} ({int(row.get('majority_count', 0) or 0)} of {m})</td></tr>"
        f"<tr><td>oracle answer</td><td><code>{_e(row.get('oracle_answer'))}</code> — {agreement}</td></tr>"
        f"<tr><td>Challenger's own answer</td><td><code>{_e(row.get('challenger_answer'))}</code></td></tr>"
        f"</table>"
        f"<p><b>The {m} answers grouped by equivalence</b></p>"
        f"<table><tr><th>answer</th><th>count</th><th></th></tr>{group_rows}</table>"
        f"<p>answers in sampling order: {', '.join(f'<code>{_e(a)}</code>' for a in answers)}</p>"
        f"<details><summary>raw responses</summary><ol>{response_items}</ol></details>"
        f"</div>")


def list_label(row) -> str:
    """One line of the question list: ✓ / ✗ the label agrees / disagrees with the oracle, · not checked,
    ∅ no majority answer."""
    if not present(row.get("majority_answer")):
        mark = "∅"
    else:
        mark = {True: "✓", False: "✗"}.get(row["label_correct"] if present(row["label_correct"]) else None, "·")
    text = " ".join(str(row["question"]).split())
    return f"{mark} it{int(row['iteration'])} p̂={float(row['p_hat']):.2f} {'K' if row['kept'] else 'D'} | {text[:90]}"


def explore(run_dir: str | Path):
    """An ipywidgets view over the run's voted questions (returns the widget)."""
    import ipywidgets as w

    table = explorer_table(run_dir)
    iterations = sorted(int(i) for i in table["iteration"].unique()) if len(table) else []
    reasons = sorted({"kept", *(str(r) for r in table["drop_reason"].dropna().unique())}) if len(table) else []
    iteration = w.Dropdown(options=[("all", None)] + [(str(i), i) for i in iterations], description="iteration")
    p_hat = w.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.05, description="p̂",
                               continuous_update=False)
    status = w.ToggleButtons(options=list(STATUS_FILTERS), description="status")
    drop = w.SelectMultiple(options=reasons, description="reasons", rows=min(6, max(2, len(reasons))))
    oracle = w.Dropdown(options=list(ORACLE_FILTERS), description="oracle")
    count = w.HTML()
    listing = w.Select(options=[], rows=12, layout=w.Layout(width="100%"))
    detail = w.HTML()

    def refresh(*_):
        rows = filter_questions(table, iteration=iteration.value, p_hat_range=tuple(p_hat.value),
                                status=status.value, drop_reasons=drop.value, oracle=oracle.value)
        shown = rows.head(MAX_LISTED)
        count.value = (f"<b>{len(rows)}</b> of {len(table)} questions"
                       + (f" (first {MAX_LISTED} listed)" if len(rows) > MAX_LISTED else ""))
        listing.options = [(list_label(r), i) for i, r in shown.iterrows()]
        listing.value = listing.options[0][1] if listing.options else None
        show()

    def show(*_):
        i = listing.value
        detail.value = question_html(table.loc[i]) if i is not None else "<i>no question matches the filters</i>"

    for control in (iteration, p_hat, status, drop, oracle):
        control.observe(refresh, names="value")
    listing.observe(show, names="value")
    refresh()
    filters = w.VBox([w.HBox([iteration, oracle]), p_hat, status, drop])
    box = w.VBox([filters, count, listing, detail])
    box.table = table  # for inspection and tests
    box.controls = {"iteration": iteration, "p_hat": p_hat, "status": status, "drop_reasons": drop,
                    "oracle": oracle, "listing": listing, "detail": detail, "count": count}
    return box
