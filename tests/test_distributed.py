"""Data-parallel training under ``mpiexec -n 2`` equals one process on the whole batch.

Each test launches tests/mpi_worker.py (or the command line) under mpiexec, with
a timeout, so a job that hangs fails instead of blocking the suite. They skip
where mpi4py or mpiexec is missing (``pip install "minigen[mpi]"``).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigen import data, to_numpy, train
from minigen.data import batches

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "mpi_worker.py"

try:
    import mpi4py  # noqa: F401

    MPIEXEC = shutil.which(
        "mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    WHY = None if MPIEXEC else 'no mpiexec on PATH (pip install "minigen[mpi]")'
except ImportError:
    MPIEXEC, WHY = None, 'mpi4py is not installed (pip install "minigen[mpi]")'

needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason=WHY or "")


def mpi_env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    env.update(MPLBACKEND="Agg", MINIGEN_PROGRESS="0")
    # Open MPI: CI runs as root, and may have fewer cores than processes
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.update(PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    env.update(OMPI_MCA_rmaps_base_oversubscribe="1")
    return {**env, **extra}


def mpiexec(*program, timeout=60, env=None):
    return subprocess.run(
        [MPIEXEC, "-n", "2", *program], capture_output=True, text=True, timeout=timeout,
        env=env or mpi_env(), cwd=ROOT,
    )  # fmt: skip


def worker(scenario, folder, runner=("-m", "mpi4py")):
    result = mpiexec(sys.executable, *runner, str(WORKER), scenario, str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / f"{scenario}.json").read_text())


def test_shards_of_a_global_batch_are_the_batch_of_one_process():
    images = (np.random.default_rng(0).random((100, 28, 28)) * 255).astype(np.uint8)
    whole = [to_numpy(x) for x, _ in batches(images, None, 12, seed=5, epoch=2)]
    parts = [[to_numpy(x) for x, _ in batches(images, None, 12, seed=5, epoch=2, shard=(r, 3))]
             for r in range(3)]  # fmt: skip
    assert len(whole) == 8 and all(len(p) == 8 for p in parts)
    for i, x in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), x)
    with pytest.raises(ValueError, match="dividing batch_size 12"):
        batches(images, None, 12, shard=(0, 5))


def test_without_a_launcher_there_is_one_process_and_no_mpi(monkeypatch):
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    code = ("import sys; from minigen import distributed; w = distributed.World(); "
            "print(w.rank, w.size, 'mpi4py' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    assert out.stdout.split() == ["0", "1", "False"]


def test_launched_without_mpi4py_is_one_sentence(tmp_path):
    hide = tmp_path / "mpi4py"  # a package that fails to import, as if not installed
    hide.mkdir()
    (hide / "__init__.py").write_text("raise ImportError('no mpi4py')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PMI_SIZE": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "minigen", "train", "mlp-vae", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "minigen: error: this process was started by mpiexec (PMI_SIZE is set), but mpi4py is "
        'not installed: pip install "minigen[mpi]", or run without mpiexec.'
    ]


@needs_mpi
def test_one_step_on_two_ranks_is_one_step_on_the_whole_batch(tmp_path):
    found = worker("equal", tmp_path)
    assert found["size"] == 2 and found["shard"] * 2 == found["whole"] == 256
    # both ranks: the averaged gradient is the whole batch's, to float32 rounding
    assert max(found["grad_error"]) < 1e-5, found
    assert max(found["param_error_in_steps"]) < 0.02, found
    # the check can fail: half the batch alone gives another gradient
    assert found["half_batch_grad_error"] > 1e-2, found


@needs_mpi
def test_ranks_stay_equal_and_one_checkpoint_resumes_exactly_and_in_one_process(tmp_path):
    found = worker("train", tmp_path)
    assert found["steps"] == 2 * (512 // (2 * found["batch"]))  # global batches of 2 x 128
    p0, p1 = (np.load(tmp_path / f"params-{r}.npy") for r in (0, 1))
    np.testing.assert_array_equal(p0, p1)
    n0, n1 = (np.load(tmp_path / f"noise-{r}.npy") for r in (0, 1))
    assert not np.array_equal(n0, n1)  # each rank draws its own noise
    for r in (0, 1):  # stopped and resumed on 2 processes: the run that never stopped
        np.testing.assert_array_equal(np.load(tmp_path / f"resumed-{r}.npy"), p0)
    assert sorted(f.name for f in (tmp_path / "run").iterdir()) == ["checkpoint.npz"]
    ckpt = tmp_path / "run" / train.CHECKPOINT
    model, _, meta = train.load(ckpt)
    assert meta["epoch"] == 2 and len(meta["history"]["loss"]) == found["steps"]
    np.testing.assert_array_equal(
        np.concatenate([to_numpy(p.data).ravel() for p in model.parameters()]), p0
    )
    images = (np.random.default_rng(1).random((512, 28, 28)) * 255).astype(np.uint8)
    _, _, history = train.train("mlp-vae", 3, images=images, resume=ckpt, out=ckpt.parent,
                                quiet=True)  # fmt: skip
    assert len(history["loss"]) == found["steps"] + 512 // found["batch"]


@needs_mpi
def test_batchnorm_statistics_are_per_rank_and_rank_0s_are_saved(tmp_path):
    worker("batchnorm", tmp_path)
    r0, r1 = (np.load(tmp_path / f"running-{r}.npy") for r in (0, 1))
    assert np.abs(r0 - r1).max() > 1e-4  # each rank's running means come from its own half
    np.testing.assert_array_equal(*(np.load(tmp_path / f"params-{r}.npy") for r in (0, 1)))
    model, _, _ = train.load(tmp_path / "run" / train.CHECKPOINT)
    saved = np.concatenate(
        [to_numpy(a).ravel() for n, a in model.state_dict().items() if n.endswith("running_mean")]
    )
    np.testing.assert_array_equal(saved, r0)


@needs_mpi
def test_command_line_trains_on_two_processes_and_resumes_in_one(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 512), ("t10k", 64)):
        data.write_idx(folder / f"{prefix}-images-idx3-ubyte",
                       (rng.random((n, 28, 28)) * 255).astype(np.uint8))  # fmt: skip
        data.write_idx(folder / f"{prefix}-labels-idx1-ubyte",
                       rng.integers(0, 10, n).astype(np.uint8))  # fmt: skip
    env = mpi_env(MINIGEN_DATA=str(tmp_path / "data"))
    out = tmp_path / "run"
    args = ["-m", "minigen", "train", "mlp-vae", "--epochs", "1", "--out", str(out)]
    result = mpiexec(sys.executable, *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith("data-parallel: 2 processes x batch 128 = 256 images per step"), first
    assert result.stdout.count("checkpoint:") == 1
    assert sorted(f.name for f in out.iterdir()) == ["checkpoint.npz", "losses.png", "samples.png"]
    again = subprocess.run(
        [sys.executable, "-m", "minigen", "train", "mlp-vae", "--epochs", "2", "--resume",
         str(out / "checkpoint.npz")], capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "data-parallel" not in again.stdout and "(epoch 2)" in again.stdout


@needs_mpi
def test_an_error_on_one_rank_ends_the_job_with_one_line(tmp_path):
    """Rank 1 alone cannot read its data; rank 0 would wait in the first allreduce."""
    env = mpi_env(MINIGEN_PROGRESS="0")
    args = ["-m", "minigen", "train", "mlp-vae", "--epochs", "1", "--out", str(tmp_path / "r")]
    rank1 = ["env", f"MINIGEN_DATA={tmp_path / 'missing'}", sys.executable, *args]
    result = subprocess.run(
        [MPIEXEC, "-n", "1", sys.executable, *args, ":", "-n", "1", *rank1],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("minigen:")]
    assert len(ours) == 1, result.stderr  # Open MPI adds its own note that it aborted
    assert ours[0].startswith(f"minigen: error: MINIGEN_DATA is set to {tmp_path / 'missing'}")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


@needs_mpi
def test_an_uncaught_exception_on_one_rank_ends_the_job(tmp_path):
    """A script without ``-m mpi4py``: minigen's exception hook aborts the others."""
    result = mpiexec(sys.executable, str(WORKER), "crash", str(tmp_path), timeout=60)
    assert result.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in result.stderr
    assert not (tmp_path / "crash.json").exists()
