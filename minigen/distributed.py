"""Data parallelism over MPI: N processes, each with 1/N of every batch.

The idea in one line: for a loss that is a mean over the batch,
L = 1/B sum_i l_i, cut a batch of B = N*b examples into N disjoint parts of b.
Process r computes g_r = grad(1/b sum_{i in part r} l_i), and

    (1/N) sum_r g_r = grad L        (the gradient of the whole batch)

So N processes that start from the same weights and average their gradients
before every optimizer step apply the same update and stay identical: they
take the steps one process would take on batches of N*b (up to the float
rounding of a sum in another order). Launch it with
``mpiexec -n N python -m minigen train MODEL``; nothing else changes.

- rank and size come from MPI (mpi4py); a process not started by a launcher
  (no OMPI_COMM_WORLD_SIZE, PMI_SIZE, ...) is size 1 and imports no MPI.
- ``attach`` broadcasts rank 0's parameters and buffers at the start and makes
  every optimizer's ``step()`` average its gradients first: one allreduce of
  one flattened buffer per step, not one call per parameter. Models with
  several optimizers (a GAN's D and G) are averaged before each of their steps.
- ``data.batches(..., shard=(rank, size))`` gives each process its own part
  of every global batch, in the order one process would see them.
- rank 0 alone writes checkpoints, figures and progress bars; its checkpoint
  is the file one process writes, so a run resumes with any number of processes.

What is not one big batch: random draws (noise z, the VAE's epsilon) come from
each process's own generator (rank r > 0 is seeded from (seed, epoch, r) at
the start of every epoch, so resuming with the same N is exact);
BatchNorm normalises each process's b examples by their own statistics, and
its running statistics are kept per process (a checkpoint holds rank 0's),
as PyTorch's DistributedDataParallel does without SyncBatchNorm.

On CuPy the gradients are reduced by NCCL (``cupy.cuda.nccl``, its id sent to
every rank by MPI) where CuPy has it, otherwise copied to the host for MPI.
The first line of a run says which. (The CuPy path is untested on a GPU.)
"""

import os
import sys

from minigen import backend
from minigen.errors import MinigenError

np = backend.host
# set by mpiexec / mpirun (Open MPI, MPICH and Intel MPI's Hydra, Slurm's PMI)
LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


class DistributedError(MinigenError, RuntimeError):
    """A data-parallel run cannot start: mpi4py missing, or a command that runs as one process."""


def launched():
    """The launcher variable that says this process was started by mpiexec, or None."""
    return next((var for var in LAUNCH_VARS if var in os.environ), None)


class World:
    """This process's place among the N that train together: ``rank``, ``size``.

    Size 1 (not launched by MPI) does nothing in each method, at no cost.
    """

    def __init__(self):
        self.rank, self.size, self.comm, self.nccl = 0, 1, None, None
        self.transport = "one process"
        var = launched()
        if var is None:
            return
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise DistributedError(
                f"this process was started by mpiexec ({var} is set), but mpi4py is not "
                'installed: pip install "minigen[mpi]", or run without mpiexec.'
            ) from e
        self.mpi, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.transport = (
            f"MPI Allreduce on host buffers ({MPI.Get_library_version().split(',')[0]})"
        )
        if self.size > 1:
            sys.excepthook = self._abort_on_exception
        if backend.name() == "cupy":
            self._use_gpu()

    def _use_gpu(self):
        # one GPU per process on a machine: the local rank picks it (CUDA_VISIBLE_DEVICES wins)
        cupy = backend.xp()
        local = int(
            os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", os.environ.get("MPI_LOCALRANKID", 0))
        )
        cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount()).use()
        try:
            from cupy.cuda import nccl
        except ImportError:
            return  # host buffers, as said in the first line
        uid = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.nccl = (nccl, nccl.NcclCommunicator(self.size, uid, self.rank))
        self.transport = f"NCCL {nccl.get_version()} on the GPUs"

    @property
    def is_main(self):
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0

    def describe(self, batch_size):
        """The first line of a run: "N processes x batch b = N*b per step, ..."."""
        processes = f"{self.size} process{'es' if self.size > 1 else ''}"
        return (
            f"data-parallel: {processes} x batch {batch_size} = {self.size * batch_size} images "
            f"per step; gradients averaged by {self.transport}"
        )

    def broadcast(self, module):
        """Copy rank 0's parameters and buffers into every process's ``module``."""
        if self.size == 1:
            return
        for array in [p.data for p in module.parameters()] + module.buffers():
            host = np.ascontiguousarray(backend.to_numpy(array))
            self.comm.Bcast(host, root=0)
            array[...] = backend.from_numpy(host)

    def average_gradients(self, optimizer):
        """Replace each gradient of ``optimizer``'s parameters by its mean over the
        processes: all of them in one flattened buffer, one allreduce."""
        if self.size == 1:
            return
        params = [p for p in optimizer.params if p.grad is not None]
        if not params:
            return
        xp = backend.xp()
        flat = xp.concatenate([p.grad.ravel() for p in params])
        self.allreduce_sum(flat)
        flat *= flat.dtype.type(1 / self.size)
        offset = 0
        for p in params:
            p.grad = flat[offset : offset + p.grad.size].reshape(p.grad.shape)
            offset += p.grad.size

    def allreduce_sum(self, flat):
        """Sum a contiguous 1-d backend array over the processes, in place."""
        if self.nccl is not None:
            nccl, comm = self.nccl
            kind = {np.float32: nccl.NCCL_FLOAT32, np.float64: nccl.NCCL_FLOAT64}[flat.dtype.type]
            stream = backend.xp().cuda.get_current_stream().ptr
            comm.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kind, nccl.NCCL_SUM, stream)
            return
        host = backend.to_numpy(flat)
        self.comm.Allreduce(self.mpi.IN_PLACE, host, op=self.mpi.SUM)
        if host is not flat:
            flat[...] = backend.from_numpy(host)

    def average_losses(self, losses):
        """{name: mean over the processes}: the loss of the whole batch, for history."""
        losses = {key: float(value) for key, value in losses.items()}
        if self.size == 1:
            return losses
        values = np.array(list(losses.values()), dtype=np.float64)
        self.comm.Allreduce(self.mpi.IN_PLACE, values, op=self.mpi.SUM)
        return dict(zip(losses, (values / self.size).tolist()))

    def barrier(self):
        """Wait until every process has come here."""
        if self.size > 1:
            self.comm.Barrier()

    def attach(self, model, optimizers):
        """Start data-parallel training: rank 0's weights everywhere, and every
        optimizer's ``step()`` averages the gradients first."""
        if self.size == 1:
            return
        self.broadcast(model)
        for opt in optimizers.values():
            opt.before_step = self.average_gradients

    def seed(self, seed, epoch):
        """Give ranks > 0 their own random stream for ``epoch``, from (seed, epoch,
        rank); rank 0 keeps the one a checkpoint saves and restores."""
        if self.rank > 0:
            backend.manual_seed([seed, epoch, self.rank])

    def _abort_on_exception(self, kind, value, traceback):
        sys.__excepthook__(kind, value, traceback)
        self.abort(1)

    def abort(self, status):
        """End every process of the job (a failed rank must not leave the others
        waiting in an allreduce forever)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(status)


_world = []


def world():
    """The World of this process (made once, on first use)."""
    if not _world:
        _world.append(World())
    return _world[0]


def exit_status(status):
    """``status`` for ``sys.exit``; a failure in a job of several processes ends them all."""
    if status and _world and _world[0].size > 1:
        _world[0].abort(status)
    return status
