"""The supervised comparison (notebook 10, `rzero compare`): the three arms over seeds, with intervals.

Arms (`rzero_lib.pipeline.compare`): the base model, R-Zero only (the last
iteration), labels only (the base model trained on the labelled data) and
R-Zero then labels. Per benchmark and averaged (math, general, all): accuracy
as the mean over seeds of the per-seed accuracy (items averaged over their
samples), a 95% percentile-bootstrap interval over items (resampled within
each seed and benchmark, the same draws for every arm, so differences are
paired), and the seed spread (standard deviation over seeds). The paper's
Table 4 is drawn beside ours for a Qwen3-4B model, with its caveat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rzero_lib.atomic_files import write_json_atomic, write_text_atomic
from rzero_lib.evaluation.general_sets import GENERAL_BENCHMARKS
from rzero_lib.evaluation.math_sets import MATH_BENCHMARKS
from rzero_lib.pipeline.compare import ARM_LABELS, ARMS_FILE, arm_folder
from rzero_lib.pipeline.rundir import MANIFEST
from rzero_lib.report.figures import save_figure
from rzero_lib.report.paper import PAPER_SUPERVISED_CAVEAT, PAPER_SUPERVISED_MODEL, paper_supervised_reference
from rzero_lib.seeds import derive_seed
from rzero_lib.values import jsonable

BOOTSTRAP_DRAWS = 2000
CONFIDENCE = 0.95
ARM_ORDER = tuple(ARM_LABELS)
# (the arm that should win, the arm it is compared with): the paper's question and R-Zero's own gain.
DIFFERENCES = (("rzero_then_labelled", "labelled_only"), ("rzero_then_labelled", "rzero_only"))
ITEM_COLUMNS = ["arm", "seed", "benchmark", "id", "accuracy"]
TABLE_COLUMNS = ["scope", "arm", "label", "seeds", "items", "accuracy", "ci_low", "ci_high", "seed_sd", "per_seed",
                 "paper"]
DIFFERENCE_COLUMNS = ["scope", "arm", "versus", "difference", "ci_low", "ci_high", "per_seed", "at_least_zero",
                      "paper"]
FIGURE_STEM = "supervised_comparison"


def load_arm_items(arms: list[dict]) -> tuple[pd.DataFrame, list[dict]]:
    """Per-item accuracy (mean over its samples) of every finished arm, and the arms not finished yet."""
    frames, missing = [], []
    for arm in arms:
        folder = arm_folder(arm)
        samples_file = folder / "samples.parquet"
        if not (folder / MANIFEST).exists() or not samples_file.exists():
            missing.append(arm)
            continue
        samples = pd.read_parquet(samples_file, columns=["benchmark", "id", "correct"])
        items = samples.assign(correct=samples["correct"].astype(float)).groupby(
            ["benchmark", "id"], sort=False)["correct"].mean().reset_index(name="accuracy")
        frames.append(items.assign(arm=arm["arm"], seed=int(arm["seed"])))
    items = pd.concat(frames, ignore_index=True)[ITEM_COLUMNS] if frames else pd.DataFrame(columns=ITEM_COLUMNS)
    return items, missing


def benchmark_scopes(benchmarks) -> dict[str, list[str]]:
    """Each benchmark on its own (the paper's column order first), then the math, general and overall averages
    (an average only when it covers more than one benchmark and differs from the overall one)."""
    present = set(benchmarks)
    ordered = [b for b in (*MATH_BENCHMARKS, *GENERAL_BENCHMARKS) if b in present] + sorted(
        present - set(MATH_BENCHMARKS) - set(GENERAL_BENCHMARKS))
    scopes = {b: [b] for b in ordered}
    for name, group in (("math average", MATH_BENCHMARKS), ("general average", GENERAL_BENCHMARKS)):
        members = [b for b in ordered if b in group]
        if 1 < len(members) < len(ordered):
            scopes[name] = members
    if len(ordered) > 1:
        scopes["average"] = ordered
    return scopes


@dataclass
class Resampled:
    """Point values and bootstrap draws per (seed, benchmark): arrays over arms (draws × arms for the bootstrap)."""

    arms: list[str]
    seeds: list[int]
    point: dict = field(default_factory=dict)  # (seed, benchmark) -> (arms,)
    draws: dict = field(default_factory=dict)  # (seed, benchmark) -> (draws, arms)
    items: dict = field(default_factory=dict)  # (seed, benchmark) -> number of items every arm answered


def resample(items: pd.DataFrame, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Resampled:
    """Bootstrap over the items every finished arm of a seed answered (the same draws for every arm)."""
    arms = [a for a in ARM_ORDER if a in set(items["arm"])]
    out = Resampled(arms, sorted(int(s) for s in items["seed"].unique()))
    for (s, benchmark), g in items.groupby(["seed", "benchmark"], sort=True):
        wide = g.pivot_table(index="id", columns="arm", values="accuracy").reindex(columns=arms)
        present = [a for a in arms if wide[a].notna().any()]
        wide = wide.dropna(subset=present)
        matrix = wide.to_numpy(dtype=float)  # items × arms (NaN columns for arms not finished in this seed)
        rng = np.random.default_rng(derive_seed(seed, "bootstrap", int(s), str(benchmark)))
        index = rng.integers(0, len(matrix), size=(draws, len(matrix)))
        out.point[(int(s), benchmark)] = matrix.mean(axis=0)
        out.draws[(int(s), benchmark)] = matrix[index].mean(axis=1)
        out.items[(int(s), benchmark)] = len(matrix)
    return out


def scope_values(r: Resampled, members: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(per-seed points: seeds × arms, seed-mean bootstrap draws: draws × arms, seed-mean points: arms, items)."""
    per_seed, boot, n = [], [], 0
    for s in r.seeds:
        keys = [(s, b) for b in members if (s, b) in r.point]
        if len(keys) != len(members):
            per_seed.append(np.full(len(r.arms), np.nan))
            continue
        per_seed.append(np.mean([r.point[k] for k in keys], axis=0))
        boot.append(np.mean([r.draws[k] for k in keys], axis=0))
        n += sum(r.items[k] for k in keys)
    per_seed = np.array(per_seed)
    with np.errstate(all="ignore"):
        draws = np.nanmean(np.array(boot), axis=0) if boot else np.full((1, len(r.arms)), np.nan)
        return per_seed, draws, np.nanmean(per_seed, axis=0), n


def interval(draws: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    values = draws[~np.isnan(draws)]
    if not len(values):
        return float("nan"), float("nan")
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def paper_value(reference: dict | None, arm: str, members: list[str]) -> float:
    values = (reference or {}).get(arm, {})
    return float(np.mean([values[b] for b in members])) if members and all(b in values for b in members) \
        else float("nan")


def comparison_tables(items: pd.DataFrame, model: str = "", draws: int = BOOTSTRAP_DRAWS,
                      seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accuracy per scope × arm, paired differences per scope) in %, with intervals, seed spread and the paper's."""
    if items.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS), pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    r = resample(items, draws, seed)
    reference = paper_supervised_reference(model)
    rows, diffs = [], []
    for scope, members in benchmark_scopes(items["benchmark"].unique()).items():
        per_seed, boot, point, n = scope_values(r, members)
        for i, arm in enumerate(r.arms):
            seeds_done = per_seed[:, i][~np.isnan(per_seed[:, i])]
            low, high = interval(boot[:, i])
            rows.append({"scope": scope, "arm": arm, "label": ARM_LABELS[arm], "seeds": len(seeds_done),
                         "items": n, "accuracy": 100 * point[i], "ci_low": 100 * low, "ci_high": 100 * high,
                         "seed_sd": 100 * float(np.std(seeds_done, ddof=1)) if len(seeds_done) > 1 else float("nan"),
                         "per_seed": [round(100 * float(v), 2) for v in per_seed[:, i]],
                         "paper": paper_value(reference, arm, members)})
        for arm, versus in DIFFERENCES:
            if arm not in r.arms or versus not in r.arms:
                continue
            i, j = r.arms.index(arm), r.arms.index(versus)
            low, high = interval(boot[:, i] - boot[:, j])
            difference = 100 * float(point[i] - point[j])
            diffs.append({"scope": scope, "arm": arm, "versus": versus, "difference": difference,
                          "ci_low": 100 * low, "ci_high": 100 * high,
                          "per_seed": [round(100 * float(v), 2) for v in per_seed[:, i] - per_seed[:, j]],
                          "at_least_zero": bool(difference >= 0) if not np.isnan(difference) else None,
                          "paper": paper_value(reference, arm, members) - paper_value(reference, versus, members)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.DataFrame(diffs, columns=DIFFERENCE_COLUMNS)


# --------------------------------------------------------------------------
# the figure and the written tables
# --------------------------------------------------------------------------


def plot_supervised_comparison(table: pd.DataFrame, title: str = ""):
    """Accuracy per scope and arm: bars with 95% intervals, a dot per seed, the paper's values as open diamonds."""
    from matplotlib.figure import Figure

    scopes = list(dict.fromkeys(table["scope"]))
    arms = [a for a in ARM_ORDER if a in set(table["arm"])]
    fig = Figure(figsize=(max(6.0, 1.2 * len(scopes) * max(1, len(arms)) / 2 + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(arms))
    colors = {"base": "0.75", "rzero_only": "tab:blue", "labelled_only": "tab:orange",
              "rzero_then_labelled": "tab:green"}
    paper_drawn = False
    for i, arm in enumerate(arms):
        g = table[table["arm"] == arm].set_index("scope").reindex(scopes)
        x = np.arange(len(scopes)) + (i - (len(arms) - 1) / 2) * width
        ax.bar(x, g["accuracy"], width, color=colors[arm], label=ARM_LABELS[arm],
               yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]], capsize=3,
               error_kw={"elinewidth": 1})
        for xi, values in zip(x, g["per_seed"]):
            if isinstance(values, list) and len(values) > 1:
                ax.scatter([xi] * len(values), values, s=9, color="black", zorder=3)
        if g["paper"].notna().any():
            ax.scatter(x, g["paper"], marker="D", facecolors="none", edgecolors="black", s=30, zorder=4,
                       label=None if paper_drawn else f"paper ({PAPER_SUPERVISED_MODEL}, Table 4)")
            paper_drawn = True
    ax.set_xticks(np.arange(len(scopes)), scopes, rotation=30 if len(scopes) > 4 else 0, ha="right"
                  if len(scopes) > 4 else "center")
    ax.set_ylabel("accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "R-Zero as mid-training: 95% bootstrap intervals, dots = seeds", fontsize=10)
    return fig


def cell(row) -> str:
    text = f"{row.accuracy:.1f} [{row.ci_low:.1f}, {row.ci_high:.1f}]"
    return text + (f" ± {row.seed_sd:.1f}" if not np.isnan(row.seed_sd) else "")


def markdown_tables(table: pd.DataFrame, differences: pd.DataFrame) -> str:
    """The comparison as Markdown: accuracy [95% CI] ± seed sd per scope and arm (paper beside), then differences."""
    if table.empty:
        return "(no finished arm yet)\n"
    arms = [a for a in ARM_ORDER if a in set(table["arm"])]
    paper_arms = [a for a in arms if table.loc[table["arm"] == a, "paper"].notna().any()]
    header = ["scope", *(ARM_LABELS[a] for a in arms), *(f"paper: {ARM_LABELS[a]}" for a in paper_arms)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scope, g in table.groupby("scope", sort=False):
        by_arm = g.set_index("arm")
        cells = [cell(by_arm.loc[a]) if a in by_arm.index else "" for a in arms]
        cells += [f"{by_arm.loc[a, 'paper']:.2f}" if a in by_arm.index and not np.isnan(by_arm.loc[a, "paper"])
                  else "" for a in paper_arms]
        lines.append("| " + " | ".join([scope, *cells]) + " |")
    text = "\n".join(lines) + "\n\naccuracy % [95% bootstrap interval over items] ± standard deviation over seeds\n"
    if not differences.empty:
        lines = ["| scope | difference | points [95% CI] | per seed | ≥ 0 | paper |", "|---|---|---|---|---|---|"]
        for d in differences.itertuples():
            paper = "" if np.isnan(d.paper) else f"{d.paper:+.2f}"
            lines.append(f"| {d.scope} | {ARM_LABELS[d.arm]} − {ARM_LABELS[d.versus]} | {d.difference:+.1f} "
                         f"[{d.ci_low:+.1f}, {d.ci_high:+.1f}] | {', '.join(f'{v:+.1f}' for v in d.per_seed)} | "
                         f"{'yes' if d.at_least_zero else 'no'} | {paper} |")
        text += "\n" + "\n".join(lines) + "\n\npaired differences (the same bootstrap draws for both arms)\n"
    if table["paper"].notna().any():
        text += f"\n{PAPER_SUPERVISED_CAVEAT}\n"
    return text


@dataclass
class SupervisedComparison:
    table: pd.DataFrame
    differences: pd.DataFrame
    missing: list[dict]
    figure: dict
    summary: dict


def write_supervised_comparison(output_dir: str | Path, draws: int = BOOTSTRAP_DRAWS) -> SupervisedComparison:
    """Read `output_dir/arms.json` (written by `rzero compare`), compare the finished arms, and write the figure
    (PNG + PDF), the tables (CSV, Markdown) and `summary.json` into `output_dir`."""
    out = Path(output_dir)
    spec = json.loads((out / ARMS_FILE).read_text())
    items, missing = load_arm_items(spec["arms"])
    table, differences = comparison_tables(items, spec.get("model", ""), draws=draws)
    write_text_atomic(out / "supervised_comparison.csv", table.to_csv(index=False))
    write_text_atomic(out / "supervised_differences.csv", differences.to_csv(index=False))
    write_text_atomic(out / "supervised_comparison.md", markdown_tables(table, differences))
    figure = {}
    if not table.empty:
        seeds = len(spec.get("seeds", []))
        # two lines: one line is wider than the figure and gets cut off
        title = (f"{spec.get('model', '')}: R-Zero as mid-training, {seeds} seed{'s' if seeds != 1 else ''}\n"
                 "(95% bootstrap intervals; dots: seeds)")
        figure = save_figure(plot_supervised_comparison(table, title), out, FIGURE_STEM)
    summary = jsonable({"parameters": spec.get("parameters"), "model": spec.get("model"), "seeds": spec.get("seeds"),
                        "missing_arms": missing, "bootstrap_draws": draws,
                        "table": table.to_dict(orient="records"),
                        "differences": differences.to_dict(orient="records"),
                        "paper_caveat": PAPER_SUPERVISED_CAVEAT if table["paper"].notna().any() else None,
                        "figure": figure})
    write_json_atomic(out / "summary.json", summary)
    return SupervisedComparison(table, differences, missing, figure, summary)
