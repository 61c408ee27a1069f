"""What tests/test_distributed.py runs under ``mpiexec -n 2``: one scenario per call.

    mpiexec -n 2 python -m mpi4py tests/mpi_worker.py SCENARIO FOLDER

Rank 0 writes what it found to FOLDER/SCENARIO.json for the test to check.

- equal: one data-parallel step of an mlp-vae (no BatchNorm; its noise fixed at
  zero so the step is deterministic) against one single-process step, on rank 0,
  on the concatenated batch: the gradients and parameters after the step.
- train: ``train.train`` for 2 epochs with out=FOLDER/run; every rank saves its
  final parameters to FOLDER/params-RANK.npy; then the same run stopped after
  one epoch and resumed (FOLDER/resumed-RANK.npy).
- batchnorm: one step of a dcgan; every rank saves its BatchNorm running means.
- crash: rank 1 raises a RuntimeError after the first allreduce (run without
  ``-m mpi4py``: minigen's own exception hook must end the job).
"""

import json
import sys
from pathlib import Path

import numpy as np

from minigen import backend, data, distributed, train
from minigen.models import build

IMAGES = (np.random.default_rng(1).random((512, 28, 28)) * 255).astype(np.uint8)


def flat(arrays):
    return np.concatenate([backend.to_numpy(a).ravel() for a in arrays])


def gather(world, vector):
    """Every rank's vector, on rank 0 (None elsewhere)."""
    return world.comm.gather(vector, root=0)


def equal(world, folder):
    backend.randn = lambda *shape, dtype=np.float32: backend.xp().zeros(shape, dtype=dtype)
    backend.manual_seed(0)
    model = build("mlp-vae")
    reference = build("mlp-vae")
    reference.load_state_dict(model.state_dict())
    alone = build("mlp-vae")  # rank 0's half alone, without averaging: must differ
    alone.load_state_dict(model.state_dict())
    optimizers = model.make_optimizers()
    world.attach(model, optimizers)
    b = model.batch_size
    (x, _), *_ = data.batches(IMAGES, None, 2 * b, seed=3, shard=(world.rank, 2))
    model.train_step(x, optimizers)
    grads = flat(p.grad for p in model.parameters())
    params = flat(p.data for p in model.parameters())
    everyone = gather(world, (grads, params))
    if world.rank:
        return
    (whole, _), *_ = data.batches(IMAGES, None, 2 * b, seed=3)
    reference.train_step(whole, reference.make_optimizers())
    alone.train_step(x, alone.make_optimizers())
    ref_g, ref_p = (flat(getattr(p, a) for p in reference.parameters()) for a in ("grad", "data"))
    alone_g = flat(p.grad for p in alone.parameters())
    scale = float(np.abs(ref_g).max())
    return {
        "grad_error": [float(np.abs(g - ref_g).max()) / scale for g, _ in everyone],
        # in units of Adam's first step, lr * g / (|g| + eps) ~ lr: a gradient near eps
        # turns float32 rounding into a visible part of a step
        "param_error_in_steps": [float(np.abs(p - ref_p).max()) / model.lr for _, p in everyone],
        "half_batch_grad_error": float(np.abs(alone_g - ref_g).max()) / scale,
        "shard": int(x.shape[0]),
        "whole": int(whole.shape[0]),
    }


def run_training(world, folder, name, epochs, images=IMAGES):
    model, _, history = train.train(
        name, epochs, images=images, out=folder / "run", quiet=True, seed=0
    )
    return model, history


def train_two_epochs(world, folder):
    model, history = run_training(world, folder, "mlp-vae", 2)
    np.save(folder / f"params-{world.rank}.npy", flat(p.data for p in model.parameters()))
    np.save(folder / f"noise-{world.rank}.npy", backend.to_numpy(backend.randn(8)))
    # the same two epochs, stopped after one and resumed on the same 2 processes
    ckpt = folder / "stopped" / train.CHECKPOINT
    train.train("mlp-vae", 1, images=IMAGES, out=ckpt.parent, quiet=True, seed=0)
    again, _, _ = train.train("mlp-vae", 2, images=IMAGES, resume=ckpt, out=ckpt.parent, quiet=True)
    np.save(folder / f"resumed-{world.rank}.npy", flat(p.data for p in again.parameters()))
    return {"steps": len(history["loss"]), "batch": model.batch_size}


def batchnorm(world, folder):
    model, _ = run_training(world, folder, "dcgan", 1, IMAGES[:128])  # one step of 2 x 64
    means = flat(a for n, a in model.state_dict().items() if n.endswith("running_mean"))
    np.save(folder / f"running-{world.rank}.npy", means)
    np.save(folder / f"params-{world.rank}.npy", flat(p.data for p in model.parameters()))
    return {}


def crash(world, folder):
    world.average_losses({"x": 1.0})
    if world.rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    world.average_losses({"x": 1.0})  # would wait for rank 1 forever
    return {"finished": True}


if __name__ == "__main__":
    scenario, folder = sys.argv[1], Path(sys.argv[2])
    world = distributed.world()
    found = {"equal": equal, "train": train_two_epochs, "batchnorm": batchnorm, "crash": crash}[
        scenario
    ](world, folder)
    if world.rank == 0:
        found["size"] = world.size
        (folder / f"{scenario}.json").write_text(json.dumps(found))
