"""One writer per run folder, Ctrl-C, and the inputs that slipped through (issue 20):
each ends in one sentence, is refused before anything is written, or gives the
right answer.

The fixtures and helpers are those of tests/test_bad_inputs.py: a small data folder,
an mlp-vae run after one epoch, the command line in a fresh process.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_bad_inputs import (  # noqa: F401 (fixtures)
    ROOT,
    _set,
    cli,
    data_dir,
    edited,
    main_error,
    one_line_error,
    run_copy,
    vae_run,
    write_split,
)

import minigen
from minigen import backend, checkpoint, data, nn, optim, train
from minigen.__main__ import main
from minigen.backend import strict
from minigen.models import build

_FIXTURES = (data_dir, run_copy, vae_run)  # pytest finds them here by their names


@pytest.fixture(autouse=True)
def small_data(data_dir, monkeypatch):
    """Every command reads the small data folder (on code without a fix, a run that should
    have been refused then trains for a second, not on all of Fashion-MNIST)."""
    monkeypatch.setenv("MINIGEN_DATA", str(data_dir))


# ------------------------------------------------------- one writer per run folder


@pytest.fixture
def holder(tmp_path):
    """Another process holding the write lock of ``tmp_path / "run"``: (folder, process)."""
    folder = tmp_path / "run"
    code = (
        "import sys, time\n"
        "from minigen import checkpoint\n"
        f"with checkpoint.lock({str(folder)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "held"
        yield folder, process
    finally:
        process.kill()
        process.wait()


def test_a_second_writer_is_refused_naming_the_process_that_holds_the_folder(
    holder, vae_run, data_dir, monkeypatch, capsys
):
    folder, process = holder
    monkeypatch.setenv("MINIGEN_DATA", str(data_dir))
    ckpt = folder / "checkpoint.npz"
    ckpt.write_bytes((vae_run / "checkpoint.npz").read_bytes())
    before = ckpt.read_bytes()
    attempts = [
        ("train", "mlp-vae", "--epochs", "1", "--out", folder, "--overwrite"),
        ("train", "mlp-vae", "--epochs", "3", "--resume", ckpt),
        ("prior", ckpt),  # the lock comes before anything else: even before "not a vq-vae"
    ]
    for args in attempts:
        line = main_error(capsys, *args)
        assert f"is in use: minigen process {process.pid} is writing checkpoints there" in line
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [checkpoint.LOCK, "checkpoint.npz"]
    # a killed holder releases the folder with it
    process.kill()
    process.wait()
    assert main(["train", "mlp-vae", "--epochs", "2", "--resume", str(ckpt)]) == 0
    assert train.load(ckpt)[2]["epoch"] == 2
    assert not (folder / checkpoint.LOCK).exists(), "the lock file goes with the lock"


def test_the_library_takes_the_lock_too(holder):
    folder, process = holder
    images = np.zeros((128, 28, 28), np.uint8)
    with pytest.raises(checkpoint.CheckpointError, match=f"process {process.pid}"):
        train.train("mlp-vae", 1, images=images, out=folder, quiet=True)
    assert not (folder / "checkpoint.npz").exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with checkpoint.lock(tmp_path), checkpoint.lock(tmp_path):
        assert (tmp_path / checkpoint.LOCK).read_text().strip() == str(os.getpid())
    assert not (tmp_path / checkpoint.LOCK).exists()


# ------------------------------------------------------------------------ Ctrl-C


def interrupt(args, cwd, data_dir, ready):
    """Start ``python -m minigen *args``, send it SIGINT once ``ready()``; the result."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINIGEN_PROGRESS": "0", "MPLBACKEND": "Agg",
           "MINIGEN_DATA": str(data_dir)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "minigen", *map(str, args)], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_ctrl_c_during_train_says_which_epoch_is_kept_and_exits_130(data_dir, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoint.npz"
    result = interrupt(
        ["train", "mlp-vae", "--epochs", "100000", "--out", run], tmp_path, data_dir,
        ready=lambda: ckpt.exists(),
    )  # fmt: skip
    assert result.returncode == 130, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    epoch = train.load(ckpt)[2]["epoch"]
    assert lines[0] == (
        f"minigen: interrupted. {ckpt} holds epoch {epoch} of mlp-vae; continue with: "
        f"python -m minigen train mlp-vae --resume {ckpt} --epochs 100000"
    )
    assert not [p for p in run.iterdir() if p.name.endswith(".minigen-tmp")]


def test_ctrl_c_during_prior_leaves_the_checkpoint_whole(data_dir, tmp_path):
    run = tmp_path / "run"
    images = (np.random.default_rng(0).random((128, 28, 28)) * 255).astype(np.uint8)
    train.train("vq-vae", 1, images=images, out=run, quiet=True)
    ckpt = run / "checkpoint.npz"
    before = ckpt.read_bytes()
    started = tmp_path / "started"

    result = interrupt(
        ["prior", ckpt, "--epochs", "100000"], tmp_path, data_dir,
        ready=lambda: started.exists() or _lock_taken(run, started),
    )  # fmt: skip
    assert result.returncode == 130, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == (
        f"minigen: interrupted. {ckpt} holds epoch 1 of vq-vae, without a prior; fit it "
        f"with: python -m minigen prior {ckpt}"
    )
    assert ckpt.read_bytes() == before


def _lock_taken(folder, flag):
    """True (and remembered in ``flag``) once a process holds the folder's lock: the
    command is past its imports, inside main."""
    if (folder / checkpoint.LOCK).exists():
        time.sleep(1.0)  # into the fitting
        flag.touch()
        return True
    return False


# ------------------------------------------------------------ the command line


def test_sample_never_writes_over_a_checkpoint(run_copy, tmp_path, capsys):
    ckpt = run_copy / "checkpoint.npz"
    before = ckpt.read_bytes()
    line = main_error(capsys, "sample", ckpt, "--out", ckpt)
    assert f"--out {ckpt} is a checkpoint, which sampling would replace" in line
    renamed = tmp_path / "model.png"  # a checkpoint under another name
    renamed.write_bytes(before)
    line = main_error(capsys, "sample", ckpt, "--out", renamed)
    assert "is a checkpoint" in line
    assert ckpt.read_bytes() == before and renamed.read_bytes() == before


def test_sample_takes_its_suffix_in_any_case_and_refuses_others(vae_run, tmp_path, capsys):
    ckpt = vae_run / "checkpoint.npz"
    assert main(["sample", str(ckpt), "--n", "3", "--out", str(tmp_path / "x.NPY")]) == 0
    assert np.load(tmp_path / "x.NPY").shape == (3, 28, 28)
    assert main(["sample", str(ckpt), "--n", "3", "--out", str(tmp_path / "x.PNG")]) == 0
    assert (tmp_path / "x.PNG").read_bytes()[:4] == b"\x89PNG"
    for name in ("x.jpg", "x"):
        line = main_error(capsys, "sample", ckpt, "--out", tmp_path / name)
        assert "sample writes a PNG grid (.png) or an array (.npy)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.NPY", "x.PNG"]


@pytest.mark.parametrize("flag", ["--out", "--resume"])
def test_an_empty_path_is_refused_by_argparse(flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "mlp-vae", flag, ""])
    assert info.value.code == 2
    assert f"argument {flag}: expected a path, got an empty string" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_seed_with_resume_is_refused(run_copy, tmp_path, capsys):
    ckpt = run_copy / "checkpoint.npz"
    before = ckpt.read_bytes()
    line = main_error(capsys, "train", "mlp-vae", "--epochs", "2", "--resume", ckpt, "--seed", "5")
    assert "a resumed run goes on with the random state saved in" in line and "(5)" in line
    assert ckpt.read_bytes() == before
    with pytest.raises(ValueError, match="a seed"):
        train.train("mlp-vae", 2, resume=ckpt, seed=0, quiet=True)


# ------------------------------------------------ checkpoints refused when loaded


def _optim(key, value):
    return lambda t: t["optim"]["adam"].__setitem__(key, value)


def _first_weight(make):
    def edit(tree):
        name = next(k for k in tree["model"] if k.endswith("weight"))
        tree["model"][name] = make(tree["model"][name])

    return edit


BAD = {
    "beta1-one": (_optim("beta1", 1.0), "beta1 (betas[0]) must lie in [0, 1), got 1.0"),
    "beta2-big": (_optim("beta2", 1.5), "beta2 (betas[1]) must lie in [0, 1), got 1.5"),
    "lr-negative": (_optim("lr", -1.0), "optim/adam/lr is -1.0, not a finite number >= 0"),
    "step-float": (_optim("state.0.step", 1.5), "'state.0.step' is 1.5, not a step count"),
    "moment-negative": (
        lambda t: t["optim"]["adam"]["state.0.exp_avg_sq"].fill(-1.0),
        "'state.0.exp_avg_sq' holds negative values",
    ),
    "history-text": (_set("meta/history/loss", ["a", "b"]), "meta/history/loss is not a list"),
    "history-nan": (_set("meta/history/loss", [float("nan")]), "meta/history/loss is not a list"),
    "history-list": (_set("meta/history", [1, 2]), "meta/history is a list, not a dict"),
    "weight-bool": (_first_weight(lambda w: w > 0), "weight is bool, the module holds float32"),
    "weight-int": (
        _first_weight(lambda w: w.astype(np.int64)),
        "weight is int64, the module holds float32",
    ),
    "weight-overflows": (
        _first_weight(lambda w: np.full(w.shape, 1e39)),
        "weight holds values too large for float32",
    ),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_a_checkpoint_out_of_range_is_refused_before_anything_is_written(
    bad, vae_run, tmp_path, capsys
):
    edit, expected = BAD[bad]
    path = edited(vae_run, tmp_path, edit)
    line = main_error(capsys, "train", "mlp-vae", "--resume", path, "--out", tmp_path / "r")
    assert expected in line and str(path) in line
    assert not (tmp_path / "r" / "checkpoint.npz").exists()
    line = main_error(capsys, "sample", path, "--n", "2", "--out", tmp_path / "s.npy")
    assert expected in line and not (tmp_path / "s.npy").exists()


def test_batchnorm_refuses_a_negative_running_variance():
    bn = nn.BatchNorm1d(3)
    state = {k: minigen.to_numpy(v) for k, v in bn.state_dict().items()}
    state["running_var"] = np.array([1.0, -0.5, 1.0], np.float32)
    with pytest.raises(nn.module.StateDictError, match="running_var must be >= 0"):
        bn.load_state_dict(state)
    assert minigen.to_numpy(bn.running_var).tolist() == [1.0, 1.0, 1.0]  # nothing copied
    state["running_var"] = np.ones(3, np.float32)
    state["num_batches_tracked"] = np.array(2.5)
    with pytest.raises(nn.module.StateDictError, match="num_batches_tracked must hold whole"):
        bn.load_state_dict(state)


def test_a_dcgan_checkpoint_with_a_negative_running_variance_is_refused(tmp_path, capsys):
    images = np.zeros((64, 28, 28), np.uint8)
    train.train("dcgan", 1, images=images, out=tmp_path / "run", quiet=True)

    def edit(tree):
        name = next(k for k in tree["model"] if k.endswith("running_var"))
        tree["model"][name][0] = -1.0

    path = edited(tmp_path / "run", tmp_path, edit)
    line = main_error(capsys, "train", "dcgan", "--resume", path, "--out", tmp_path / "r")
    assert "running_var must be >= 0" in line
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


# ------------------------------------------------------------------- the library


def test_tensor_of_lists_adds_numbers_not_lists():
    total = minigen.Tensor([1.0, 2.0]) + minigen.Tensor([1.0, 2.0])
    assert minigen.to_numpy(total).tolist() == [2.0, 4.0]
    assert total.dtype == np.float32


@pytest.mark.parametrize("data", [[None, 1.0], ["1", "2"]])
def test_tensor_of_things_that_are_not_numbers_is_a_type_error(data):
    with pytest.raises(TypeError, match="cannot make an array of numbers"):
        minigen.tensor(data)  # NumPy made [None, 1.0] into [nan, 1.0]


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_an_operand_that_is_not_numbers_is_the_same_type_error_on_every_backend(name):
    before = backend.name()
    backend.use_backend(name)
    try:
        x = minigen.tensor([1.0, 2.0])
        with pytest.raises(TypeError, match="cannot use \\[None, 1.0\\]"):
            x + [None, 1.0]
    finally:
        backend.use_backend(before)


def test_strict_refuses_object_arrays_as_cupy_does():
    for make in (strict.asarray, strict.array):
        with pytest.raises(ValueError, match="Unsupported dtype object"):
            make([None, 1.0])


def test_an_integer_upstream_gradient_keeps_the_leafs_dtype():
    w = minigen.tensor([1.0, 2.0], requires_grad=True)
    (w * 3).backward(backend.xp().asarray([1, 1]))
    assert w.grad.dtype == np.float32
    assert minigen.to_numpy(w.grad).tolist() == [3.0, 3.0]
    (g,) = minigen.grad(w * 3, w, minigen.Tensor(backend.xp().asarray([1, 2])))
    assert g.dtype == np.float32


def test_adam_refuses_a_parameter_given_twice():
    w = minigen.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="parameters 0 and 1 are the same tensor"):
        optim.Adam([w, w])


@pytest.mark.parametrize("key, value", [("beta1", 1.0), ("lr", -1.0), ("eps", float("nan"))])
def test_adam_load_state_dict_refuses_out_of_range_and_changes_nothing(key, value):
    w = minigen.tensor([1.0], requires_grad=True)
    opt = optim.Adam([w])
    state = {**opt.state_dict(), key: value}
    with pytest.raises(ValueError, match=key):
        opt.load_state_dict(state)
    assert opt.beta1 == 0.9 and opt.lr == 1e-3


@pytest.mark.parametrize("max_norm", [-1.0, 0.0, float("nan"), True])
def test_clip_grad_norm_refuses_a_max_norm_that_is_not_positive(max_norm):
    w = minigen.tensor([3.0, 4.0], requires_grad=True)
    w.grad = backend.xp().asarray([3.0, 4.0], dtype=np.float32)
    with pytest.raises(ValueError, match="max_norm must be a number > 0"):
        optim.clip_grad_norm_([w], max_norm)
    assert minigen.to_numpy(w.grad).tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    "name, options",
    [("mlp-vae", {"latent_dim": 0}), ("dcgan", {"ema": 2.0}),
     ("vae-gan", {"gamma": float("nan")}), ("vae-gan", {"margin": float("nan")})],
)  # fmt: skip
def test_build_refuses_options_out_of_their_range(name, options):
    with pytest.raises(ValueError, match=f"option {next(iter(options))} must be"):
        build(name, **options)


def test_a_blank_minigen_data_counts_as_unset(tmp_path, monkeypatch):
    write_split(tmp_path / "cache" / "fashion-mnist")
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data.sources, "SYSTEM_DIRS", {"fashion-mnist": [], "mnist": []})
    for blank in ("", "  "):
        monkeypatch.setenv("MINIGEN_DATA", blank)
        src = data.locate("fashion-mnist", download=False)
        assert src.kind == "cache" and src.images.parent == tmp_path / "cache" / "fashion-mnist"


# --------------------------------------------------------- lessons and tools


def test_a_lesson_flag_is_checked_as_build_checks_it(tmp_path):
    for flag in ("--gamma", "--margin"):
        lesson = ROOT / "lessons" / "08_vaegan.py"
        result = cli(flag, "nan", "--out", str(tmp_path / "o"), cwd=tmp_path,
                     data_dir=tmp_path / "nowhere", script=lesson)  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"argument {flag}: {flag[2:]} must be a number in [0, inf), got 'nan'" in (
            result.stderr
        )


@pytest.mark.parametrize("target", ["a-file", "a-file/sub"])
def test_notebooks_to_a_file_is_one_line(target, tmp_path):
    (tmp_path / "a-file").write_text("mine")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebooks.py"), str(tmp_path / target), "01"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write notebooks to" in lines[0]
    assert (tmp_path / "a-file").read_text() == "mine"
