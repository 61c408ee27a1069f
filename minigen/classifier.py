"""A small convnet classifier whose features judge generated images.

FID compares real and generated images in the feature space of a network
that knows what the images should look like. minigen's images are 28x28
grayscale, so instead of Inception it uses this convnet, trained with
minigen on the same dataset (``tools/train_classifier.py``):

    Conv 1->32 (k4 s2 p1) -> ReLU -> Conv 32->64 (k4 s2 p1) -> ReLU -> flatten 64*7*7
    -> Linear 128 -> ReLU (the features) -> Linear 10 (class logits)

Input: x (N, 1, 28, 28) with pixels in [0, 1]. The trained weights ship with
the package as ``minigen/weights/<dataset>-classifier.npz``. This module holds
the network and its weights only; what is measured with it (FID, class
coverage, its own accuracy) is in minigen/metrics.py.
"""

from pathlib import Path

from minigen import backend, nn

WEIGHTS_DIR = Path(__file__).parent / "weights"


class Classifier(nn.Module):
    """Convnet: ``features(x)`` is the (N, hidden) penultimate layer, ``forward`` the logits."""

    def __init__(self, hidden=128, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x):
        """(N, 1, 28, 28) in [0, 1] -> (N, hidden) activations after the last ReLU."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def weights_path(dataset="fashion-mnist"):
    """Where the shipped weights for ``dataset`` live."""
    return WEIGHTS_DIR / f"{dataset}-classifier.npz"


def load_classifier(dataset="fashion-mnist"):
    """The trained Classifier for ``dataset``, in eval mode, on the current backend."""
    path = weights_path(dataset)
    if not path.is_file():
        raise FileNotFoundError(
            f"no trained classifier for {dataset!r}: {path} is missing. Make it with "
            f"`python tools/train_classifier.py --dataset {dataset}` (from the repository root)."
        )
    with backend.host.load(path, allow_pickle=False) as f:
        state = {name: f[name] for name in f.files}
    model = Classifier(
        hidden=state["head.weight"].shape[1], num_classes=state["head.weight"].shape[0]
    )
    model.load_state_dict(state)
    return model.eval()
