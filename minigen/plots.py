"""Figures for the lessons, saved as PNG files: what the models make and learn.

- ``image_grid``: samples in a grid;
- ``loss_curves``: losses per training step, each in its own panel, smoothed;
- ``epoch_curves``: measures taken once per epoch (epoch axis from 1);
- ``reconstructions``: originals above their reconstructions;
- ``interpolation``: rows of images decoded along paths in latent space;
- ``latent_scatter``: 2-D codes coloured by class;
- ``manifold_grid``: an n x n grid decoded from a 2-D latent lattice.

Each takes host or device arrays (or Tensors; copied with minigen.to_numpy),
writes one PNG to ``path`` (its folder is created) and returns the path.
Headless: figures are drawn by the Agg canvas directly, never through
pyplot, so nothing opens a window or changes the backend of a notebook.
``save_figure`` writes a figure drawn elsewhere (a lesson's own pyplot
figure) the same way. Inside a Jupyter kernel every PNG written here is also
shown inline, in the output of the cell that made it; in a terminal or a
script nothing is shown.

Sizes are fixed, so a figure's pixel size is known in advance: image grids
draw each image pixel as ``SCALE`` x ``SCALE`` screen pixels (see
``grid_pixels``); charts are ``CHART`` (epoch curves), ``loss_pixels(n)``
(n loss panels) or ``SCATTER`` pixels.
"""

import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from minigen import backend
from minigen.autograd import to_numpy

np = backend.host

DPI = 100
SCALE = 2  # screen pixels per image pixel in grids
PAD = 2  # image pixels of gray between grid cells
TITLE_PX = 30  # height of the title band above a grid
CHART = (800, 500)  # width, height in pixels
SCATTER = (800, 600)
PANEL_PX = 200  # height of one loss panel
FRAME_PX = 80  # title band and step axis below the loss panels
SMOOTH = 100  # loss curves: a moving average over 1/SMOOTH of the steps


# ---------------------------------------------------------------- image grids


def grid_pixels(n, height, width, nrow=8, title=False):
    """(width, height) in pixels of the PNG for n images of height x width."""
    cols, rows = min(nrow, n), -(-n // nrow)
    w = (cols * (width + PAD) + PAD) * SCALE
    h = (rows * (height + PAD) + PAD) * SCALE
    return w, h + (TITLE_PX if title else 0)


def image_grid(images, path, nrow=8, value_range=(0, 1), title=None):
    """Images (N, 1, H, W), (N, 3, H, W) or (N, H, W) in a grid, ``nrow`` per row.

    Pixels are clipped to ``value_range`` and drawn black (low) to white (high).
    """
    images = _as_images(images, "image_grid")
    return _save_grid(images, path, nrow, value_range, title)


def reconstructions(originals, reconstructed, path, value_range=(0, 1), n=8, title=None):
    """The first n originals (top row) above their reconstructions (bottom row).

    ``title`` names what reconstructed them (a model's name); it leads the figure's title.
    """
    a = _as_images(originals, "reconstructions")[:n]
    b = _as_images(reconstructed, "reconstructions")[:n]
    if a.shape != b.shape:
        raise ValueError(
            f"reconstructions: originals {a.shape} and reconstructions {b.shape} differ in shape"
        )
    heading = "originals (top), reconstructions (bottom)"
    heading = f"{title}: {heading}" if title else heading
    return _save_grid(np.concatenate([a, b]), path, len(a), value_range, heading)


def interpolation(strips, path, value_range=(0, 1)):
    """One row per strip: (rows, steps, H, W) or (rows, steps, 1, H, W), or a list of strips."""
    if isinstance(strips, (list, tuple)):
        rows = [_as_images(s, "interpolation") for s in strips]
        if len({r.shape for r in rows}) != 1:
            raise ValueError(
                f"interpolation: strips differ in shape: {sorted({r.shape for r in rows})}"
            )
        a = np.stack(rows)
    else:
        a = to_numpy(strips)
        if a.ndim not in (4, 5):
            raise ValueError(
                f"interpolation: expected (rows, steps, H, W) or (rows, steps, C, H, W), "
                f"got shape {a.shape}"
            )
    steps = a.shape[1]
    flat = _as_images(a.reshape(-1, *a.shape[2:]), "interpolation")
    return _save_grid(flat, path, steps, value_range, None)


def manifold_grid(images, path, n, value_range=(0, 1)):
    """n x n images decoded from a regular 2-D lattice of latent points, row by row."""
    images = _as_images(images, "manifold_grid")
    if len(images) != n * n:
        raise ValueError(f"manifold_grid: needs n*n = {n * n} images, got {len(images)}")
    return _save_grid(images, path, n, value_range, None)


def _as_images(images, who):
    """Host float32 (N, H, W) or (N, H, W, 3) from any accepted layout."""
    if isinstance(images, (list, tuple)):
        a = np.stack([to_numpy(x) for x in images])
    else:
        a = to_numpy(images)
    if a.ndim == 2:
        a = a[None]  # one image
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[1] == 3:
        a = a.transpose(0, 2, 3, 1)  # channels last for imshow
    elif a.ndim != 3:
        raise ValueError(
            f"{who}: expected images (N, H, W), (N, 1, H, W) or (N, 3, H, W), got shape {a.shape}"
        )
    if len(a) == 0:
        raise ValueError(f"{who}: no images to draw")
    return a.astype(np.float32)


def _save_grid(images, path, nrow, value_range, title):
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    n, h, w = images.shape[:3]
    cols, rows = min(nrow, n), -(-n // nrow)
    canvas = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, *images.shape[3:]), 0.5)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        y, x = PAD + r * (h + PAD), PAD + c * (w + PAD)
        canvas[y : y + h, x : x + w] = img
    width, height = grid_pixels(n, h, w, nrow, title=bool(title))
    fig = _figure(width, height)
    grid_height = canvas.shape[0] * SCALE
    ax = fig.add_axes((0, 0, 1, grid_height / height))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1 - TITLE_PX / 2 / height, title, ha="center", va="center", fontsize=11)
    return _save(fig, path)


# ---------------------------------------------------------------- charts


def loss_pixels(n):
    """(width, height) in pixels of the PNG ``loss_curves`` writes for n losses."""
    return CHART[0], FRAME_PX + n * PANEL_PX


def moving_average(values, window):
    """Mean of ``values`` over a centred window of ``window`` steps (odd; 1 leaves them as
    they are), over the steps there are at either end: as long as ``values``."""
    values = np.asarray(values, dtype=np.float64)
    half = window // 2
    sums = np.concatenate([[0.0], np.cumsum(values)])
    i = np.arange(len(values))
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, len(values))
    return (sums[hi] - sums[lo]) / (hi - lo)


def loss_curves(history, path, title=None, logy=False, levels=None):
    """Each loss in its own panel, stacked over one step axis: history maps a name to its
    values per training step.

    Losses of different sizes (a reconstruction of hundreds of nats beside a KL of 20) each
    get their own y scale, so none flattens another. A step's value comes from one batch and
    is noisy: it is drawn pale, under its moving average over ``len // SMOOTH`` steps
    (``moving_average``). logy=True puts the losses on a log scale (for losses that stay
    positive). ``levels={name: (label, value)}`` draws a level in that loss's panel (a gate's
    margin).
    The PNG is ``loss_pixels(len(history))``. Measures taken once per epoch go to
    ``epoch_curves``.
    """
    if not history:
        raise ValueError("loss_curves: history is empty; expected {name: [values, ...]}")
    fig = _figure(*loss_pixels(len(history)), layout="constrained")
    axes = fig.subplots(len(history), 1, sharex=True, squeeze=False)[:, 0]
    for i, (ax, (name, values)) in enumerate(zip(axes, history.items())):
        values = [_number(v) for v in values]
        window = max(1, len(values) // SMOOTH) | 1  # odd: centred on its step
        steps = range(len(values))
        if window > 1:
            ax.plot(steps, values, color=f"C{i}", linewidth=0.6, alpha=0.3, label="per step")
            smooth = moving_average(values, window)
            ax.plot(steps, smooth, color=f"C{i}", linewidth=1.5, label=f"mean of {window} steps")
        else:
            ax.plot(steps, values, color=f"C{i}", linewidth=1.2, label="per step")
        if name in (levels or {}):
            label, level = levels[name]
            ax.axhline(level, color="k", linestyle="--", linewidth=1, label=label)
        if logy:
            ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def epoch_curves(history, path, ylabel, title=None, logy=False):
    """One line per measure taken after each epoch: history maps a name to its
    values for epochs 1, 2, ... (one marker per value).

    ``ylabel`` names what was measured and its unit ("test -ELBO (nats per image)").
    """
    if not history:
        raise ValueError("epoch_curves: history is empty; expected {name: [value per epoch]}")
    fig = _figure(*CHART, layout="constrained")
    ax = fig.add_subplot()
    longest = 0
    for name, values in history.items():
        values = [_number(v) for v in values]
        longest = max(longest, len(values))
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name, linewidth=1)
    if longest == 0:
        raise ValueError("epoch_curves: every curve is empty; nothing to draw")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0.5, longest + 0.5)  # room for whole epochs, even for a single one
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # no epoch 2.5
    return _finish_curves(fig, ax, path, title, logy)


def _finish_curves(fig, ax, path, title, logy):
    """What every line chart ends with: scale, grid, legend, title, save."""
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def latent_scatter(z, labels, path, class_names=None):
    """2-D latent codes z (N, 2) as points, coloured by class label (N,)."""
    z = to_numpy(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(
            f"latent_scatter: z must have shape (N, 2), got {z.shape}; "
            "project wider codes to 2-D first (e.g. with PCA)"
        )
    fig = _figure(*SCATTER, layout="constrained")
    ax = fig.add_subplot()  # the constrained layout makes room for the labels and the legend
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        labels = to_numpy(labels).astype(np.int64)
        if labels.shape != (len(z),):
            raise ValueError(
                f"latent_scatter: labels must have shape ({len(z)},), got {labels.shape}"
            )
        for k in np.unique(labels):
            pts = z[labels == k]
            name = class_names[k] if class_names is not None else str(k)
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=f"C{k % 10}", label=name)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), markerscale=3, frameon=False)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return _save(fig, path)


# ---------------------------------------------------------------- figures and files


def _number(v):
    """A float from a Python number, 0-d array (host or device) or Tensor."""
    return float(v) if isinstance(v, (int, float)) else float(to_numpy(v))


def _figure(width, height, layout=None):
    """An Agg figure of width x height pixels; charts ask for layout="constrained", which
    sizes the axes so that labels, titles and legends fit inside."""
    # +0.5: Agg truncates width * dpi to an int, and w / dpi * dpi can land just below w
    fig = Figure(figsize=((width + 0.5) / DPI, (height + 0.5) / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path):
    """Write a matplotlib figure drawn elsewhere (a lesson's own) as a PNG at ``path``, as the
    figures above are written: folder created, shown inline inside a Jupyter kernel, and
    closed, so pyplot forgets it (and a notebook does not show it a second time at the end of
    the cell). Returns the path."""
    path = _save(fig, path)
    pyplot = sys.modules.get("matplotlib.pyplot")  # imported only if a figure came from it
    if pyplot is not None:
        pyplot.close(fig)
    return path


def in_notebook():
    """True inside a Jupyter kernel (IPython's shell there has a ``kernel``), where a PNG
    can be shown in the cell's output; False in a script, a terminal or terminal IPython."""
    ipython = sys.modules.get("IPython")  # never imported here: loaded only if in use
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    if in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path)))  # the file's own bytes, as saved
    return path
