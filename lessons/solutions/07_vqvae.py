"""Worked solutions to the exercises at the end of lessons/07_vqvae.py.

One function per exercise; each prints what the exercise asks for, computed
(``_exercises.py`` says how to run them).
"""

from _exercises import run_exercises

from minigen import backend, metrics
from minigen.train import train

np = backend.host
POSITIONS = 49  # the 7x7 code grid


def train_vq(args, images, **options):
    """The lesson's vq-vae with ``options`` (1 epoch with --quick, else 2); returns
    (model, history)."""
    epochs = 1 if args.quick else 2
    model, _, history = train(
        "vq-vae", epochs, images=images.train, seed=args.seed, quiet=True, **options
    )
    return model, history


def exercise_1(args, images):
    """Shrink the codebook"""
    for k in (4, 64) if args.quick else (4, 16, 64):
        model, _ = train_vq(args, images, num_codes=k, restart_dead=True)
        counts, perplexity, dead = metrics.code_usage(model, images.test)
        rec = metrics.reconstruction_bce(model, images.test)
        print(
            f"   K = {k:2d} (with restarts): test reconstruction BCE {rec:6.1f} nats per image, "
            f"{k - dead} codes used, perplexity {perplexity:5.1f}; the grid's ceiling 49 ln K = "
            f"{POSITIONS * np.log(k):6.1f} nats"
        )


def exercise_2(args, images):
    """The commitment weight beta"""
    for beta in (0.05, 1.0) if args.quick else (0.05, 0.25, 1.0):
        model, history = train_vq(args, images, beta=beta, restart_dead=True)
        rec = metrics.reconstruction_bce(model, images.test)
        _, perplexity, _ = metrics.code_usage(model, images.test)
        last = max(1, len(history["vq"]) // 10)  # the last tenth of the steps
        print(
            f"   beta {beta:4.2f}: test reconstruction BCE {rec:6.1f}, perplexity {perplexity:5.1f}, "
            f"codebook + commitment term over the last tenth of steps "
            f"{np.mean(history['vq'][-last:]):7.3f}"
        )


def exercise_3(args, images):
    """What a prior that knows only code frequencies saves"""
    model, _ = train_vq(args, images, restart_dead=True)
    k = model.num_codes
    train_codes = backend.to_numpy(model.encode_indices(images.train)).ravel()
    test_codes = backend.to_numpy(model.encode_indices(images.test)).ravel()
    # frequencies counted on the training codes; +1 so that a code unseen there keeps some mass
    p = (np.bincount(train_codes, minlength=k) + 1.0) / (len(train_codes) + k)
    per_position = float(-np.log(p[test_codes]).mean())
    print(
        f"   uniform prior: {np.log(k):.3f} nats per position, KL {POSITIONS * np.log(k):.1f} "
        f"nats per image"
    )
    print(
        f"   code frequencies of the training grids: {per_position:.3f} nats per position on the "
        f"test codes, KL {POSITIONS * per_position:.1f} nats per image (saves "
        f"{POSITIONS * (np.log(k) - per_position):.1f})"
    )


run_exercises("lesson 07", globals())
