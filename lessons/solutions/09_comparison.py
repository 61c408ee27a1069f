"""Worked solutions to the exercises at the end of lessons/09_comparison.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

import time

from _exercises import run_exercises

from minigen import backend, data, metrics
from minigen.classifier import load_classifier
from minigen.models import build
from minigen.train import train

np = backend.host
NAMES = ["dcgan", "mlp-vae", "conv-vae", "vq-vae", "vae-gan"]


def exercise_1(args, images):
    """What an epoch of each model costs"""
    steps = 1 if args.quick else 10
    per_epoch = {}
    for name in NAMES:
        backend.manual_seed(args.seed)
        model = build(name)
        optimizers = model.make_optimizers()
        x = data.scale_pixels(images.train[: model.batch_size, None], model.scale)
        model.train_step(x, optimizers)  # the first step allocates; time the ones after it
        began = time.process_time()  # CPU time: what a busy machine's other work does not add
        for _ in range(steps):
            model.train_step(x, optimizers)
        seconds = (time.process_time() - began) / steps
        per_epoch[name] = seconds * (60000 // model.batch_size)
        print(
            f"   {name:9s}: {1000 * seconds:6.1f} ms per step of {model.batch_size}, "
            f"{per_epoch[name]:6.1f} s per epoch of 60,000 images (CPU time)"
        )
    print(
        "   epoch cost against the mlp-vae's: "
        + ", ".join(f"{n} {per_epoch[n] / per_epoch['mlp-vae']:.1f}x" for n in NAMES)
    )


def exercise_2(args, images):
    """Equal epochs instead of equal time"""
    for name in ("mlp-vae", "conv-vae"):
        began = time.process_time()
        model, _, _ = train(name, 1, images=images.train, seed=args.seed, quiet=True)
        seconds = time.process_time() - began
        backend.manual_seed(args.seed)
        nelbo = metrics.negative_elbo(model, images.test)
        print(
            f"   {name:8s}: one epoch of {len(images.train):,} images in {seconds:5.1f} s of CPU time, "
            f"test -ELBO {nelbo:.1f}"
        )


def exercise_3(args, images):
    """A generator that drops classes"""
    classifier = load_classifier(images.dataset)
    classes = data.CLASSES[images.dataset]
    half = len(images.test) // 2
    reference = images.test[:half]
    others, labels = images.test[half:], images.test_labels[half:]
    trousers = classes.index("Trouser") if "Trouser" in classes else 1
    for label, keep in (
        ("every class", np.ones(len(others), dtype=bool)),
        (f"without {classes[trousers]}", labels != trousers),
        ("without 5 classes (0-4)", labels >= 5),
    ):
        chosen = others[keep]
        fd = metrics.fid(reference, chosen, classifier)
        covered = metrics.class_coverage(chosen, classifier)[1]
        print(
            f"   real test images, {label:24s} ({len(chosen):5d} images) against {half} others: "
            f"Fréchet distance {fd:7.2f}, {covered}/10 classes covered"
        )


run_exercises("lesson 09", globals())
