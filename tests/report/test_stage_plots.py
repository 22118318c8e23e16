"""The figures the notebooks show: each shown once, and titles that say what they show and fit."""

from __future__ import annotations

import pandas as pd
import pytest

from rzero_lib.report.figures import plot_p_hat_histograms
from rzero_lib.report.stage_plots import plot_log_history, plot_p_hat_histogram


@pytest.fixture
def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    yield plt
    plt.close("all")


def test_a_plot_made_here_is_closed_so_a_notebook_shows_it_once(pyplot):
    """pyplot's inline backend shows every open figure at the end of a cell, on top of the returned one."""
    history = pd.DataFrame({"step": [1, 2], "reward": [0.1, 0.3]})
    for fig in (plot_log_history(history, ["reward"]), plot_log_history(history, ["absent"]),
                plot_p_hat_histogram([0.5, 1.0], m=4)):
        assert fig.axes and not pyplot.get_fignums(), "the returned figure is still open in pyplot"
    _, ax = pyplot.subplots()
    assert plot_p_hat_histogram([0.5], m=4, ax=ax) is ax.figure
    assert pyplot.get_fignums(), "a figure the caller made stays the caller's"


def test_the_histogram_title_counts_every_drop(pyplot):
    """Voting drops questions outside the band and also those with no answer: the kept share is votes'."""
    p_hats = [0.5, 0.5, 0.5, 0.25, 0.25, 1.0, 0.0, 0.0]  # 5 in the band, 2 of them with no majority answer
    kept = [True, True, True, False, False, False, False, False]
    fig = plot_p_hat_histogram(p_hats, m=4, kept=kept, title="Solver agreement, iteration 1")
    assert fig.axes[0].get_title() == "Solver agreement, iteration 1  (kept 38%)"
    assert plot_p_hat_histogram(p_hats, m=4).axes[0].get_title() == "in the band 62%"


def test_p_hat_histograms_title_fits_a_one_iteration_run():
    votes = pd.DataFrame({"iteration": [1] * 4, "p_hat": [0.25, 0.5, 0.5, 1.0], "kept": [True, True, True, False],
                          "answers": [["1", "2", "3", "4"]] * 4})
    fig = plot_p_hat_histograms(votes, m=4)
    title = fig._suptitle
    assert "_{" not in title.get_text().replace("$_{", "")  # subscripts are typeset, not shown raw
    assert "$_{k-1}$" in title.get_text()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box, page = title.get_window_extent(renderer), fig.bbox
    assert box.x0 >= page.x0 and box.x1 <= page.x1, "the title is clipped"
