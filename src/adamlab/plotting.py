"""Paper-style figure helpers used by every notebook of the book.

One colour per optimizer, fixed for the whole book (:data:`OPTIMIZER_COLORS`, keyed by the class
name in :mod:`adamlab.optim`), one set of matplotlib defaults (:func:`use_book_style`), and
:func:`contour_paths`, which draws a 2-D objective as contour lines with the paths that optimizers
took across it.

Only the object-oriented matplotlib API is used here (no ``pyplot``), so the module is safe with
any backend, including Agg on a headless machine. The core (``adamlab.optim``, ``adamlab.nn``)
never imports this module.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping

import matplotlib
import numpy as np

__all__ = [
    "OPTIMIZER_COLORS",
    "OPTIMIZER_LABELS",
    "BOOK_STYLE",
    "BOOK_WIDTH",
    "BOOK_DPI",
    "book_png",
    "optimizer_label",
    "use_book_style",
    "optimizer_color",
    "contour_paths",
    "loss_curves",
]

#: The colour of each optimizer in every figure of the book, keyed by class name.
#: Adam is red throughout; its relatives get colours that stay apart in print and for the
#: common forms of colour blindness as far as ten colours allow (matplotlib's "tab10" set).
OPTIMIZER_COLORS: dict[str, str] = {
    "Adam": "#d62728",  # red
    "AdaGrad": "#1f77b4",  # blue
    "RMSProp": "#2ca02c",  # green
    "SGD": "#7f7f7f",  # grey
    "Momentum": "#ff7f0e",  # orange
    "Nesterov": "#9467bd",  # purple
    "AdaDelta": "#8c564b",  # brown
    "AdaMax": "#e377c2",  # pink
    "AMSGrad": "#17becf",  # cyan
    "SFO": "#bcbd22",  # olive
}

#: Names the paper (and the book's prose) uses for the same optimizers.
_ALIASES: dict[str, str] = {
    "SGDNesterov": "Nesterov",
    "SGDMomentum": "Momentum",
}

#: The one name of each optimizer in the book's prose, tables and legends, keyed by the lower-case
#: key the experiment engine uses (``adamlab.experiments``): the names of the paper's figures.
OPTIMIZER_LABELS: dict[str, str] = {
    "adam": "Adam",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSProp",
    "sgdnesterov": "SGDNesterov",
    "adadelta": "AdaDelta",
    "adamax": "AdaMax",
    "amsgrad": "AMSGrad",
    "sgd": "SGD",
    "sfo": "SFO",
}
#: What a curve key's suffix adds to the label (``adam-decay``: Adam with α_t = α/√t).
_LABEL_SUFFIXES: dict[str, str] = {
    "+dropout": "+dropout",
    "-decay": r", $\alpha/\sqrt{t}$",
    "-nodrop": ", no dropout",
}

#: The width every figure is drawn at, in inches, and its resolution: 7.68 in x 200 dpi = 1536 px,
#: twice the 768 CSS px of the book's text column, so that figures are sharp on HiDPI screens. A
#: point of text is then 768 / (72 x 7.68) = 1.39 CSS px on the page, whatever figsize a notebook
#: asked for: :func:`book_png` scales each figure to this width before drawing it.
BOOK_WIDTH = 7.68
BOOK_DPI = 200

#: matplotlib settings shared by all figures. Text sizes are for :data:`BOOK_WIDTH`: tick and
#: legend text at 10.5 pt shows at about 15 px on the page, axis labels at 11.5 pt at 16 px, the
#: size of the body text.
BOOK_STYLE: dict[str, object] = {
    "figure.figsize": (BOOK_WIDTH, 5.0),
    "figure.dpi": BOOK_DPI,
    "savefig.dpi": BOOK_DPI,
    "figure.autolayout": True,
    "font.size": 11.0,
    "axes.titlesize": 11.5,
    "axes.labelsize": 11.5,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "svg.hashsalt": "adamlab",  # deterministic ids if a figure is ever saved as SVG
}


def book_png(fig) -> bytes:
    """The PNG of ``fig`` as the book shows it: scaled to :data:`BOOK_WIDTH` (aspect ratio kept),
    drawn at :data:`BOOK_DPI`, cropped to its content."""
    width, height = fig.get_size_inches()
    if width != BOOK_WIDTH:
        fig.set_size_inches(BOOK_WIDTH, height * BOOK_WIDTH / width)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=BOOK_DPI, bbox_inches="tight")
    return buf.getvalue()


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to ``matplotlib.rcParams`` (call once at the top of a notebook).

    Inside IPython it also makes :func:`book_png` the PNG form of every figure, so that all
    figures of the book have one width and one text size on the page.
    """
    matplotlib.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebooks' kernel
        return
    shell = get_ipython()
    if shell is not None:
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        # The inline backend installs its own PNG formatter when pyplot first loads it; load it
        # now (a figure made and closed), so that book_png replaces that formatter, not before.
        plt.close(plt.figure())
        shell.display_formatter.formatters["image/png"].for_type(Figure, book_png)


def optimizer_label(key: str) -> str:
    """The book's name for an experiment curve key: ``"sgdnesterov"`` -> ``"SGDNesterov"``,
    ``"adagrad+dropout"`` -> ``"AdaGrad+dropout"``, ``"adam-decay"`` -> Adam with α/√t (in math).
    An unknown key raises ``KeyError`` listing the known ones."""
    base, suffix = key, ""
    for s in _LABEL_SUFFIXES:
        if key.endswith(s):
            base, suffix = key[: -len(s)], _LABEL_SUFFIXES[s]
    if base not in OPTIMIZER_LABELS:
        raise KeyError(f"no book label for optimizer key {key!r}; known: "
                       f"{', '.join(sorted(OPTIMIZER_LABELS))} (suffixes {', '.join(_LABEL_SUFFIXES)})")
    return OPTIMIZER_LABELS[base] + suffix


def optimizer_color(label: str) -> str:
    """Colour of the optimizer named at the start of ``label``.

    ``"Adam"``, ``"Adam (lr=0.1)"`` and ``"Adam+dropout"`` all give Adam's colour; the paper's name
    ``"SGDNesterov"`` gives Nesterov's. An unknown name raises ``KeyError`` listing the known ones.
    """
    match = re.match(r"[A-Za-z]+", label)
    name = match.group(0) if match else ""
    name = _ALIASES.get(name, name)
    if name not in OPTIMIZER_COLORS:
        known = ", ".join(sorted(OPTIMIZER_COLORS))
        raise KeyError(f"no book colour for optimizer label {label!r}; known names: {known}")
    return OPTIMIZER_COLORS[name]


def _objective_grid(
    fun: Callable[[np.ndarray], object], xlim: tuple[float, float], ylim: tuple[float, float], resolution: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``fun`` on a ``resolution`` x ``resolution`` mesh; ``fun`` may return f or (f, grad)."""
    xs = np.linspace(xlim[0], xlim[1], resolution)
    ys = np.linspace(ylim[0], ylim[1], resolution)
    X, Y = np.meshgrid(xs, ys)
    Z = np.empty_like(X)
    point = np.empty(2, dtype=np.float64)
    for idx in np.ndindex(X.shape):
        point[0], point[1] = X[idx], Y[idx]
        value = fun(point.copy())
        Z[idx] = float(value[0] if isinstance(value, tuple) else value)
    return X, Y, Z


def _check_limits(name: str, lim: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(x) for x in lim)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be a finite (low, high) pair with low < high, got {lim!r}")
    return lo, hi


def contour_paths(
    ax,
    fun: Callable[[np.ndarray], object],
    paths: Mapping[str, np.ndarray],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    levels: int | np.ndarray = 20,
    log_levels: bool = True,
    optimum: np.ndarray | None = None,
    colors: Mapping[str, str] | None = None,
    resolution: int = 160,
    xlabel: str = r"$\theta_1$",
    ylabel: str = r"$\theta_2$",
    legend: bool | Mapping[str, object] = True,
):
    """Draw contours of a 2-D objective and the optimizer paths across it.

    Parameters
    ----------
    ax : matplotlib Axes to draw on.
    fun : objective taking a float64 array of shape (2,) and returning ``f`` or ``(f, grad)``
        (the form of :func:`adamlab.problems.rosenbrock`).
    paths : label -> array of shape (n_steps + 1, 2), the iterates theta_0 .. theta_n. Each path
        becomes exactly one line in ``ax.lines``, coloured by :func:`optimizer_color` of its label
        unless ``colors`` gives the label a colour.
    xlim, ylim : the window (the mesh covers it; paths leaving it are clipped, not hidden).
    levels : number of contour levels, or an explicit increasing array of levels in units of f.
    log_levels : with an integer ``levels``, space the levels geometrically in f - min(f) over the
        mesh, so valleys such as Rosenbrock's show structure; otherwise linearly.
    optimum : optional point of shape (2,), marked with a black star.
    legend : True for a legend at matplotlib's "best" place, False for none, or a mapping of
        keyword arguments for ``ax.legend`` (e.g. ``{"loc": "center left", "bbox_to_anchor": (1, 0.5)}``).

    Paths are drawn in the order given, each a little thinner than the one before, so that a path
    running on top of an earlier one leaves the earlier one visible along its edges.
    Start points are marked with a black circle (one marker per distinct start). Markers are drawn
    with ``ax.scatter``, so ``ax.lines`` holds only the paths. Returns the contour set.
    """
    xlim = _check_limits("xlim", xlim)
    ylim = _check_limits("ylim", ylim)
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    checked: dict[str, np.ndarray] = {}
    for label, path in paths.items():
        arr = np.asarray(path, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
            raise ValueError(
                f"path {label!r} must have shape (n_steps + 1, 2) with at least one point, got shape {arr.shape}"
            )
        checked[label] = arr
    if optimum is not None:
        optimum = np.asarray(optimum, dtype=np.float64)
        if optimum.shape != (2,):
            raise ValueError(f"optimum must have shape (2,), got shape {optimum.shape}")
    colors = dict(colors or {})
    line_colors = {label: colors[label] if label in colors else optimizer_color(label) for label in checked}

    X, Y, Z = _objective_grid(fun, xlim, ylim, int(resolution))
    if np.ndim(levels) == 0:
        n_levels = int(levels)
        if n_levels < 2:
            raise ValueError(f"levels must be >= 2 or an array of levels, got {levels!r}")
        zmin, zmax = float(Z.min()), float(Z.max())
        if log_levels:
            shifted = Z - zmin
            positive = shifted[shifted > 0]
            low = max(float(positive.min()) if positive.size else 1.0, (zmax - zmin) * 1e-8)
            level_values = zmin + np.geomspace(low, zmax - zmin, n_levels)
        else:
            level_values = np.linspace(zmin, zmax, n_levels + 2)[1:-1]
    else:
        level_values = np.asarray(levels, dtype=np.float64)
    contours = ax.contour(X, Y, Z, levels=level_values, colors="0.78", linewidths=0.6, zorder=1)

    starts: list[np.ndarray] = []
    n_paths = len(checked)
    for i, (label, arr) in enumerate(checked.items()):
        width = 1.2 + 0.35 * (n_paths - 1 - i)  # the last path 1.2 points wide, earlier ones wider
        ax.plot(arr[:, 0], arr[:, 1], color=line_colors[label], label=label, lw=width, zorder=3)
        if not any(np.array_equal(arr[0], s) for s in starts):
            starts.append(arr[0])
    if starts:
        s = np.array(starts)
        ax.scatter(s[:, 0], s[:, 1], marker="o", s=22, color="black", zorder=4, label="start")
    if optimum is not None:
        ax.scatter([optimum[0]], [optimum[1]], marker="*", s=90, color="black", zorder=4, label="optimum")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not False and (checked or optimum is not None):
        ax.legend(**(dict(legend) if isinstance(legend, Mapping) else {"loc": "best"}))
    return contours


def loss_curves(
    ax,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    colors: Mapping[str, str] | None = None,
    legend: bool = True,
):
    """Plot one curve per optimizer label: ``curves[label] = (x, y)`` with x and y 1-D of equal length.

    Colours follow :func:`optimizer_color` (or ``colors``); the axis labels are the caller's (book
    style: lowercase, with units). Returns the list of Line2D objects in the order of ``curves``.
    """
    colors = dict(colors or {})
    lines = []
    for label, (x, y) in curves.items():
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"curve {label!r} needs 1-D x and y of equal length, got shapes {x.shape} and {y.shape}")
        color = colors[label] if label in colors else optimizer_color(label)
        (line,) = ax.plot(x, y, color=color, label=label)
        lines.append(line)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend and lines:
        ax.legend(loc="best")
    return lines

