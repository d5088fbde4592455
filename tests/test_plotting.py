"""Tests for adamlab.plotting: fixed optimizer colours, contour_paths, loss_curves."""

import inspect

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

import adamlab.optim as optim
from adamlab import plotting
from adamlab.plotting import OPTIMIZER_COLORS, contour_paths, loss_curves, optimizer_color


def _optimizer_classes():
    """Every optimizer class that adamlab.optim exports (subclasses of Optimizer, not the base)."""
    return sorted(
        name
        for name, obj in vars(optim).items()
        if inspect.isclass(obj) and issubclass(obj, optim.Optimizer) and obj is not optim.Optimizer
    )


def _bowl(theta):
    """f = theta_1^2 + 4 theta_2^2 with its gradient, the (f, grad) form of adamlab.problems."""
    return float(theta[0] ** 2 + 4.0 * theta[1] ** 2), np.array([2.0 * theta[0], 8.0 * theta[1]])


def test_every_exported_optimizer_has_a_colour():
    classes = _optimizer_classes()
    # the contract names nine optimizer classes; a missing one would make this test vacuous
    assert {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam", "AdaMax", "AMSGrad"} <= set(
        classes
    )
    missing = [name for name in classes if name not in OPTIMIZER_COLORS]
    assert missing == []


def test_colours_are_distinct():
    rgb = {name: np.array(to_rgb(c)) for name, c in OPTIMIZER_COLORS.items()}
    names = sorted(rgb)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.linalg.norm(rgb[a] - rgb[b]) > 0.15, (a, b)


def test_optimizer_color_reads_the_leading_name():
    assert optimizer_color("Adam") == OPTIMIZER_COLORS["Adam"]
    assert optimizer_color("Adam (lr=0.1)") == OPTIMIZER_COLORS["Adam"]
    assert optimizer_color("AdaGrad+dropout") == OPTIMIZER_COLORS["AdaGrad"]
    assert optimizer_color("SGDNesterov") == OPTIMIZER_COLORS["Nesterov"]
    with pytest.raises(KeyError, match="Foo"):
        optimizer_color("Foo")


def test_contour_paths_draws_one_line_per_path_with_its_colour_and_label():
    fig = Figure()
    ax = fig.add_subplot()
    start = np.array([1.5, 1.0])
    paths = {
        "SGD": np.array([start, [1.0, 0.5], [0.5, 0.2]]),
        "Adam": np.array([start, [1.2, 0.7], [0.9, 0.4], [0.3, 0.1]]),
        "AdaGrad": np.array([start, [1.4, 0.8]]),
    }
    cs = contour_paths(ax, _bowl, paths, xlim=(-2, 2), ylim=(-1.5, 1.5), levels=12, optimum=np.zeros(2))
    assert len(ax.lines) == len(paths)
    for line, (label, path) in zip(ax.lines, paths.items()):
        assert line.get_label() == label
        assert np.allclose(to_rgb(line.get_color()), to_rgb(OPTIMIZER_COLORS[label]))
        np.testing.assert_array_equal(line.get_xdata(), path[:, 0])
        np.testing.assert_array_equal(line.get_ydata(), path[:, 1])
    widths = [line.get_linewidth() for line in ax.lines]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # later paths drawn thinner
    # log-spaced levels, increasing, in units of f
    assert len(cs.levels) == 12
    assert np.all(np.diff(cs.levels) > 0)
    # one start marker (all paths share the start) and the optimum marker
    assert len(ax.collections) >= 2
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.5, 1.5)
    assert ax.get_xlabel() == ax.get_xlabel().lower()
    legend_labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend_labels[:3] == ["SGD", "Adam", "AdaGrad"]
    assert "start" in legend_labels and "optimum" in legend_labels


def test_contour_paths_levels_are_geometric_in_excess_over_the_minimum():
    fig = Figure()
    ax = fig.add_subplot()
    # an odd resolution puts a mesh point at (0, 0) exactly, so the mesh minimum is 3.0
    cs = contour_paths(ax, lambda th: float(th @ th) + 3.0, {}, (-1, 1), (-1, 1), levels=6, resolution=161)
    excess = np.asarray(cs.levels) - 3.0
    assert excess[0] > 0 and excess[-1] == pytest.approx(2.0)
    q = excess[1:] / excess[:-1]
    np.testing.assert_allclose(q, q[0], rtol=1e-9)
    fig2 = Figure()
    cs_lin = contour_paths(fig2.add_subplot(), lambda th: float(th @ th), {}, (-1, 1), (-1, 1), 6, log_levels=False)
    np.testing.assert_allclose(np.diff(cs_lin.levels), np.diff(cs_lin.levels)[0], rtol=1e-9)


def test_contour_paths_legend_options():
    fig = Figure()
    ax = fig.add_subplot()
    contour_paths(ax, _bowl, {"Adam": np.zeros((2, 2))}, (-1, 1), (-1, 1), legend=False)
    assert ax.get_legend() is None
    ax2 = fig.add_subplot(2, 1, 2)
    contour_paths(ax2, _bowl, {"Adam": np.zeros((2, 2))}, (-1, 1), (-1, 1), legend={"loc": "upper left"})
    assert ax2.get_legend() is not None and ax2.get_legend()._loc == 2  # matplotlib's code for "upper left"


def test_contour_paths_honours_explicit_colours():
    fig = Figure()
    ax = fig.add_subplot()
    contour_paths(ax, _bowl, {"my run": np.zeros((3, 2))}, (-1, 1), (-1, 1), colors={"my run": "#000080"})
    assert np.allclose(to_rgb(ax.lines[0].get_color()), to_rgb("#000080"))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((5, 3)), np.zeros(4), np.zeros((2, 5, 2)), np.zeros((0, 2))],
    ids=["three-columns", "1-d", "3-d", "empty"],
)
def test_contour_paths_rejects_a_path_of_the_wrong_shape(bad):
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match=r"path 'Adam' must have shape \(n_steps \+ 1, 2\).*got shape"):
        contour_paths(ax, _bowl, {"SGD": np.zeros((3, 2)), "Adam": bad}, (-1, 1), (-1, 1))
    assert len(ax.lines) == 0  # nothing half-drawn: the shapes are checked before drawing


def test_contour_paths_rejects_bad_limits_and_optimum():
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match="xlim"):
        contour_paths(ax, _bowl, {}, (1, -1), (-1, 1))
    with pytest.raises(ValueError, match="optimum"):
        contour_paths(ax, _bowl, {}, (-1, 1), (-1, 1), optimum=np.zeros(3))


def test_use_book_style_sets_rcparams():
    with matplotlib.rc_context():
        plotting.use_book_style()
        for key, value in plotting.BOOK_STYLE.items():
            expected = list(value) if isinstance(value, tuple) else value
            assert matplotlib.rcParams[key] == expected, key


def test_loss_curves_colours_and_shape_check():
    fig = Figure()
    ax = fig.add_subplot()
    x = np.arange(5.0)
    lines = loss_curves(ax, {"Adam": (x, 1 / (1 + x)), "SGD": (x, 2 / (1 + x))}, "epochs", "training cost", logy=True)
    assert [ln.get_label() for ln in lines] == ["Adam", "SGD"]
    assert np.allclose(to_rgb(lines[1].get_color()), to_rgb(OPTIMIZER_COLORS["SGD"]))
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="curve 'Adam'"):
        loss_curves(ax, {"Adam": (x, x[:3])}, "epochs", "cost")


@pytest.mark.parametrize("figsize", [(5.0, 3.4), (8.4, 5.6), (7.68, 3.0)])
def test_book_png_has_one_width_and_twice_the_column(figsize):
    from matplotlib.figure import Figure

    with matplotlib.rc_context(plotting.BOOK_STYLE):
        fig = Figure(figsize=figsize)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], label="Adam")
        ax.set_xlabel("epoch")
        ax.legend()
        png = plotting.book_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    # 7.68 in at 200 dpi is 1536 px, cropped a little to the content; aspect ratio kept
    assert 1400 <= width <= 1536, width
    assert abs(height / width - figsize[1] / figsize[0]) < 0.08
    assert tuple(fig.get_size_inches()) == pytest.approx(
        (plotting.BOOK_WIDTH, figsize[1] * plotting.BOOK_WIDTH / figsize[0]))


def test_book_text_is_near_the_body_text_on_the_page():
    px_per_pt = 768 / (72 * plotting.BOOK_WIDTH)  # the 768-px column shows BOOK_WIDTH inches
    for key in ("xtick.labelsize", "ytick.labelsize", "legend.fontsize", "axes.labelsize"):
        assert 13 <= plotting.BOOK_STYLE[key] * px_per_pt <= 17, key
    assert plotting.BOOK_WIDTH * plotting.BOOK_DPI == pytest.approx(2 * 768)


def test_optimizer_labels_are_the_papers_names():
    assert plotting.optimizer_label("sgdnesterov") == "SGDNesterov"
    assert plotting.optimizer_label("adagrad+dropout") == "AdaGrad+dropout"
    assert plotting.optimizer_label("adam-decay") == r"Adam, $\alpha/\sqrt{t}$"
    assert plotting.optimizer_label("adam-nodrop") == "Adam, no dropout"
    with pytest.raises(KeyError, match="known: "):
        plotting.optimizer_label("lion")
    # every curve of every panel has a label, and its colour is the optimizer's
    from adamlab.experiments import specs

    for panel in specs.PANELS:
        if specs.get_spec(panel, "paper").tune is None:
            continue  # a fixed grid (fig4): its entries are grid points, labelled by their values
        for opt in specs.get_spec(panel, "paper").optimizers:
            label = plotting.optimizer_label(opt.name)
            assert plotting.optimizer_color(label) == plotting.optimizer_color(opt.algorithm)
