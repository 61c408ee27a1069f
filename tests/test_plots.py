"""Figures: each writes a PNG of the expected pixel size, from host or device arrays."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

import minigen
import minigen.data
from minigen import backend, plots


def png_size(path):
    """(width, height) from the PNG header."""
    raw = path.read_bytes()[:24]
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", raw[16:24])


def device(a):
    return backend.from_numpy(np.asarray(a, dtype=np.float32))


def test_image_grid_size_and_content(tmp_path):
    images = np.zeros((64, 1, 28, 28), np.float32)
    images[0] = 1.0  # the first image white, the rest black
    path = plots.image_grid(device(images), tmp_path / "new" / "dir" / "grid.png")
    assert path == tmp_path / "new" / "dir" / "grid.png"
    # 8 x 8 cells of 28 + 2 pixels plus a 2-pixel border, each pixel drawn 2 x 2
    assert png_size(path) == plots.grid_pixels(64, 28, 28) == (484, 484)
    rgb = imread(path)[..., :3]
    first = rgb[2 * 2 + 2 : 2 * 2 + 54, 2 * 2 + 2 : 2 * 2 + 54]  # inside the first cell
    second = rgb[2 * 2 + 2 : 2 * 2 + 54, 2 * 32 + 2 : 2 * 32 + 54]
    assert first.min() > 0.99 and second.max() < 0.01
    assert abs(rgb[0, 0, 0] - 0.5) < 0.01, "gray between cells"


@pytest.mark.parametrize(
    "shape,nrow,title",
    [((10, 28, 28), 4, None), ((3, 1, 12, 20), 8, "samples"), ((5, 3, 8, 8), 5, "rgb")],
)
def test_image_grid_layouts(tmp_path, shape, nrow, title):
    images = np.random.default_rng(0).uniform(-1, 1, shape)
    path = plots.image_grid(images, str(tmp_path / "g.png"), nrow, (-1, 1), title)
    h, w = shape[-2:]
    expected = plots.grid_pixels(shape[0], h, w, nrow, title=bool(title))
    assert png_size(path) == expected
    if shape == (10, 28, 28):
        assert expected == ((4 * 30 + 2) * 2, (3 * 30 + 2) * 2)


def test_value_range_clips(tmp_path):
    # with value_range (-1, 1), -1 is black and 1 white; values beyond are clipped
    images = np.array([-5.0, -1.0, 1.0, 5.0]).reshape(4, 1, 1, 1) * np.ones((4, 1, 6, 6))
    rgb = imread(plots.image_grid(images, tmp_path / "v.png", nrow=4, value_range=(-1, 1)))
    centers = [rgb[2 * 2 + 6, 2 * (2 + i * 8) + 6, 0] for i in range(4)]
    np.testing.assert_allclose(centers, [0, 0, 1, 1], atol=0.01)


def test_reconstructions(tmp_path, monkeypatch):
    x = np.random.default_rng(1).uniform(0, 1, (20, 1, 28, 28))
    path = plots.reconstructions(x, device(x[:, 0] * 0.5)[:, None], tmp_path / "r.png", n=6)
    assert png_size(path) == plots.grid_pixels(12, 28, 28, nrow=6, title=True)
    titles = []
    original = Figure.savefig
    monkeypatch.setattr(
        Figure,
        "savefig",
        lambda fig, *a, **k: (titles.append(fig.texts[0].get_text()), original(fig, *a, **k))[1],
    )
    plots.reconstructions(x, x, tmp_path / "s.png")
    plots.reconstructions(x, x, tmp_path / "t.png", title="vae-gan")  # which model, when two
    assert titles == [
        "originals (top), reconstructions (bottom)",
        "vae-gan: originals (top), reconstructions (bottom)",
    ]
    with pytest.raises(ValueError, match="differ in shape"):
        plots.reconstructions(x, x[:, :, :14], tmp_path / "r2.png")


def test_interpolation_array_and_list(tmp_path):
    strips = np.random.default_rng(2).uniform(0, 1, (3, 10, 28, 28))
    a = plots.interpolation(device(strips), tmp_path / "i.png")
    assert png_size(a) == plots.grid_pixels(30, 28, 28, nrow=10)
    b = plots.interpolation([s[:, None] for s in strips], tmp_path / "j.png")
    assert png_size(b) == png_size(a)
    with pytest.raises(ValueError, match="strips differ in shape"):
        plots.interpolation([strips[0], strips[1][:5]], tmp_path / "k.png")


def test_manifold_grid(tmp_path):
    images = np.random.default_rng(3).uniform(0, 1, (25, 1, 28, 28))
    path = plots.manifold_grid(images, tmp_path / "m.png", 5)
    assert png_size(path) == plots.grid_pixels(25, 28, 28, nrow=5) == (304, 304)
    with pytest.raises(ValueError, match="needs n\\*n = 36 images, got 25"):
        plots.manifold_grid(images, tmp_path / "m.png", 6)


def test_loss_curves(tmp_path):
    history = {
        "d_loss": [1.3, 1.1, 0.9, 0.8],
        "g_loss": [minigen.tensor(0.7 + 0.1 * i) for i in range(6)],  # Tensors are fine
    }
    path = plots.loss_curves(history, tmp_path / "l.png", title="GAN")
    assert png_size(path) == plots.loss_pixels(2) == (800, 480)
    assert png_size(plots.loss_curves(history, tmp_path / "log.png", logy=True)) == (800, 480)
    with pytest.raises(ValueError, match="history is empty"):
        plots.loss_curves({}, tmp_path / "e.png")


def test_loss_curves_one_panel_each_smoothed(tmp_path, monkeypatch):
    """A reconstruction of hundreds and a KL of 20 each get their own panel and scale; the
    noisy per-step values are drawn under their moving average; a level shows in its panel."""
    rng = np.random.default_rng(0)
    history = {"reconstruction": 300 + rng.normal(0, 10, 1000), "KL": 20 + rng.normal(0, 1, 1000)}
    drawn = {}
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        drawn["panels"] = [
            (ax.get_ylabel(), ax.get_ylim(), [line.get_label() for line in ax.get_lines()])
            for ax in fig.axes
        ]
        drawn["smooth"] = fig.axes[1].get_lines()[1].get_ydata()
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    plots.loss_curves(history, tmp_path / "l.png", levels={"KL": ("margin", 21.0)})
    (rec_name, rec_lim, rec_lines), (kl_name, kl_lim, kl_lines) = drawn["panels"]
    assert (rec_name, kl_name) == ("reconstruction", "KL")
    assert rec_lim[0] > 200 and kl_lim[1] < 30, "the KL shares the reconstruction's scale"
    assert rec_lines == ["per step", "mean of 11 steps"]
    assert kl_lines == ["per step", "mean of 11 steps", "margin"]  # 1000 // SMOOTH = 10 -> 11
    np.testing.assert_allclose(drawn["smooth"], plots.moving_average(history["KL"], 11))
    assert np.std(drawn["smooth"]) < 0.5 * np.std(history["KL"]), "the mean does not smooth"


def test_moving_average():
    np.testing.assert_allclose(plots.moving_average([1, 2, 3, 4, 5], 3), [1.5, 2, 3, 4, 4.5])
    np.testing.assert_allclose(plots.moving_average([1, 5, 2], 1), [1, 5, 2])


def test_inline_display_only_inside_a_kernel(tmp_path, monkeypatch):
    """In a Jupyter kernel every saved PNG is also displayed, its own bytes; elsewhere not."""
    IPython = pytest.importorskip("IPython")
    display = pytest.importorskip("IPython.display")

    shown = []
    monkeypatch.setattr(display, "display", lambda obj: shown.append(obj))
    images = np.zeros((4, 1, 8, 8))
    plots.image_grid(images, tmp_path / "a.png")  # no kernel here: nothing shown
    monkeypatch.setattr(IPython, "get_ipython", lambda: type("Terminal", (), {})())
    plots.image_grid(images, tmp_path / "b.png")  # terminal IPython: nothing shown either
    assert shown == []

    monkeypatch.setattr(IPython, "get_ipython", lambda: type("Kernel", (), {"kernel": 1})())
    path = plots.image_grid(images, tmp_path / "c.png")
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    own = plots.save_figure(fig, tmp_path / "own.png")
    assert [s.data for s in shown] == [path.read_bytes(), own.read_bytes()]
    assert all(s.format == "png" for s in shown)


def test_save_figure_closes_a_pyplot_figure(tmp_path):
    """A lesson's pyplot figure is written and forgotten, so a notebook shows it only once."""
    code = (
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
        "from minigen import plots\n"
        "fig, ax = plt.subplots(); ax.plot([0, 1])\n"
        f"path = plots.save_figure(fig, {str(tmp_path / 'sub' / 'f.png')!r})\n"
        "print(len(plt.get_fignums()), path.read_bytes()[:4])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "0 b'\\x89PNG'", result.stderr[-2000:]


def test_epoch_curves_axis_starts_at_epoch_1(tmp_path, monkeypatch):
    history = {"mlp-vae": [260.0, 250.0, 245.0], "conv-vae": [minigen.tensor(240.0)]}
    path = plots.epoch_curves(history, tmp_path / "e.png", "test -ELBO (nats)", title="t")
    assert png_size(path) == plots.CHART
    drawn = {}  # what the saved figure holds: x data of each line, axis labels
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        ax = fig.axes[0]
        drawn["x"] = [list(line.get_xdata()) for line in ax.get_lines()]
        drawn["labels"] = (ax.get_xlabel(), ax.get_ylabel())
        lo, hi = ax.get_xlim()
        drawn["ticks"] = [t for t in ax.get_xticks() if lo <= t <= hi]
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    plots.epoch_curves(history, tmp_path / "f.png", "test -ELBO (nats)")
    assert drawn["x"] == [[1, 2, 3], [1]]
    assert drawn["labels"] == ("epoch", "test -ELBO (nats)")
    assert drawn["ticks"] == [1, 2, 3]
    plots.epoch_curves({"one epoch": [3.0]}, tmp_path / "one.png", "x")
    assert drawn["ticks"] == [1]  # a single epoch gets one whole tick, not 0.95 ... 1.05
    with pytest.raises(ValueError, match="history is empty"):
        plots.epoch_curves({}, tmp_path / "g.png", "x")
    with pytest.raises(ValueError, match="every curve is empty"):
        plots.epoch_curves({"a": []}, tmp_path / "h.png", "x")


def test_latent_scatter(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    z, labels = rng.normal(size=(300, 2)), rng.integers(0, 10, 300)
    names = minigen.data.CLASSES["fashion-mnist"]
    path = plots.latent_scatter(device(z), backend.from_numpy(labels), tmp_path / "s.png", names)
    assert png_size(path) == plots.SCATTER == (800, 600)
    assert png_size(plots.latent_scatter(z, None, tmp_path / "t.png")) == (800, 600)
    # codes in the hundreds (long tick labels): the axis labels and legend still fit
    fig_boxes = {}
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        result = original(fig, *args, **kwargs)  # drawn: the layout has placed everything
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        fig_boxes["parts"] = [ax.yaxis.label, ax.xaxis.label, ax.get_legend()]
        fig_boxes["extents"] = [p.get_window_extent(renderer) for p in fig_boxes["parts"]]
        return result

    monkeypatch.setattr(Figure, "savefig", spy)
    plots.latent_scatter(-300 * z, labels, tmp_path / "w.png", names)
    for box in fig_boxes["extents"]:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= 800 and box.y1 <= 600, box
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\), got \(300, 3\)"):
        plots.latent_scatter(rng.normal(size=(300, 3)), labels, tmp_path / "u.png")


def test_bad_images_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"image_grid: expected images .* got shape \(2, 2, 5, 5\)"
    ):
        plots.image_grid(np.zeros((2, 2, 5, 5)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="low < high"):
        plots.image_grid(np.zeros((2, 5, 5)), tmp_path / "x.png", value_range=(1, 0))


def test_headless_without_pyplot():
    code = (
        "import sys, minigen.plots as p, numpy as np, tempfile, os\n"
        "d = tempfile.mkdtemp(); p.image_grid(np.zeros((4, 8, 8)), os.path.join(d, 'a.png'))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = str(Path(minigen.__file__).parent.parent)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
