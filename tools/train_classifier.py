"""Train the classifier whose features FID and class coverage use, and save its weights.

    python tools/train_classifier.py                       # Fashion-MNIST, 3 epochs
    python tools/train_classifier.py --dataset mnist --epochs 2
    python tools/train_classifier.py --limit 2000 --epochs 1 --out /tmp/c.npz   # smoke run

Trains ``minigen.classifier.Classifier`` with minigen itself (Adam, lr 1e-3,
batch 128, cross-entropy) on the train split, prints the test accuracy and
writes the weights as a plain ``.npz`` (no pickle) to
``minigen/weights/<dataset>-classifier.npz``, which ships with the package.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import minigen  # noqa: E402
from minigen import data, optim  # noqa: E402
from minigen.classifier import Classifier, weights_path  # noqa: E402
from minigen.metrics import accuracy  # noqa: E402
from minigen.nn import functional as F  # noqa: E402, N812


def train(images, labels, epochs, batch_size=128, lr=1e-3, seed=0, log_every=100):
    """A Classifier trained on host uint8 images (N, 28, 28) and int labels (N,)."""
    minigen.manual_seed(seed)
    model = Classifier()
    opt = optim.Adam(model.parameters(), lr=lr)
    step, start = 0, time.time()
    for epoch in range(epochs):
        model.train()
        batches = data.batches(
            images, labels, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch
        )
        for x, y in batches:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            step += 1
            if step % log_every == 0:
                print(
                    f"epoch {epoch + 1} step {step}: loss {loss.item():.4f} "
                    f"({time.time() - start:.0f} s)",
                    flush=True,
                )
    return model.eval()


def save(model, path):
    """Write the state dict as host float32 arrays, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: minigen.to_numpy(v).astype(np.float32) for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
        np.savez(f, **arrays)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="use only the first N train images")
    p.add_argument("--out", default=None, help="weights file (default: the shipped location)")
    args = p.parse_args(argv)

    train_x, train_y = data.load(args.dataset, split="train")
    test_x, test_y = data.load(args.dataset, split="test")
    if args.limit:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
    print(
        f"{args.dataset}: {len(train_x)} train, {len(test_x)} test images; "
        f"backend {minigen.backend.name()}"
    )

    start = time.time()
    model = train(train_x, train_y, args.epochs)
    minutes = (time.time() - start) / 60
    acc = accuracy(model, test_x, test_y)
    print(f"trained {args.epochs} epochs in {minutes:.1f} min; test accuracy {acc:.4f}")

    out = Path(args.out) if args.out else weights_path(args.dataset)
    save(model, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return acc


if __name__ == "__main__":
    main()
