"""Each model declares its options once (minigen/models/options.py): the constructor,
checkpoints and the command line all read that declaration."""

import numpy as np
import pytest

from minigen import checkpoint, models, train
from minigen.__main__ import main, parse
from minigen.models.options import Option, declared

IMAGES = np.random.default_rng(0).integers(0, 256, size=(128, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("mlp-vae", {"latent_dim": 0}, r"latent_dim must be an integer in \[1, 65536\]"),
        ("mlp-gan", {"ema": 2.0}, r"ema must be a number in \(0, 1\), or None, got 2.0"),
        ("dcgan", {"lr": float("nan")}, "lr must be a number"),
        ("vae-gan", {"betas": (0.5,)}, "betas must be 2 values"),
        ("wgan-gp", {"n_critic": 2.5}, "n_critic must be an integer"),
        ("vq-vae", {"restart_dead": 1}, "restart_dead must be True or False"),
    ],
)
def test_build_refuses_values_the_declaration_does_not_allow(name, options, message):
    with pytest.raises(ValueError, match=message):
        models.build(name, **options)


def test_build_refuses_an_unknown_option():
    with pytest.raises(TypeError, match="unknown option 'latent'.*latent_dim"):
        models.build("mlp-vae", latent=3)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_options_hold_every_declared_value_and_attributes_read_them(name):
    model = models.build(name)
    for key, option in declared(type(model)).items():
        assert getattr(model, key) == model.options.get(key, option.default)
        assert isinstance(option.help, str) and option.help
    model.lr = 0.5  # one copy: setting the attribute sets the option, checked
    assert model.options["lr"] == 0.5
    with pytest.raises(ValueError, match="lr must be"):
        model.lr = -1.0


def test_a_vae_resolves_its_latent_size_from_its_kind():
    assert models.build("mlp-vae").options["latent_dim"] == 20
    assert models.build("conv-vae").options["latent_dim"] == 16


def test_a_checkpoint_with_an_option_out_of_range_is_refused_before_building(tmp_path):
    train.train("mlp-gan", 1, images=IMAGES[:64], out=tmp_path, quiet=True)
    path = tmp_path / "checkpoint.npz"
    tree = checkpoint.load(path)
    tree["meta"]["options"]["ema"] = 2.0
    checkpoint.save(path, tree)
    with pytest.raises(checkpoint.CheckpointError, match="meta/options do not fit a mlp-gan.*ema"):
        train.load(path)


def test_every_option_is_a_flag_of_train_model():
    for name in models.MODELS:
        args = parse(["train", name])
        assert args.model == name
        assert not any(hasattr(args, key) for key in models.flags(name))  # defaults: the model's
    args = parse(["train", "dcgan", "--lr", "1e-4", "--z-dim", "32", "--betas", "0.4", "0.9"])
    assert (args.lr, args.z_dim, args.betas) == (1e-4, 32, [0.4, 0.9])
    args = parse(["train", "vq-vae", "--restart-dead"])
    assert args.restart_dead is True
    args = parse(["prior", "ckpt.npz", "--prior-hidden", "8"])
    assert args.prior_hidden == 8


def test_a_bad_flag_names_the_flag_and_what_it_allows(capsys):
    with pytest.raises(SystemExit) as info:
        parse(["train", "mlp-vae", "--latent-dim", "0"])
    assert info.value.code == 2
    assert "argument --latent-dim: latent_dim must be an integer in [1, 65536]" in (
        capsys.readouterr().err
    )


def test_flags_reach_the_model(tmp_path, monkeypatch, capsys):
    from tests.test_cli import write_data

    write_data(tmp_path / "fashion-mnist", 128)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    monkeypatch.setenv("MINIGEN_PROGRESS", "0")
    out = tmp_path / "run"
    assert main(["train", "mlp-vae", "--epochs", "1", "--out", str(out), "--latent-dim", "4"]) == 0
    model, _, meta = train.load(out / "checkpoint.npz")
    assert meta["options"]["latent_dim"] == 4 and model.encoder.mu.out_features == 4
    resume = ["train", "mlp-vae", "--epochs", "2", "--resume", str(out / "checkpoint.npz")]
    assert main([*resume, "--lr", "0.1"]) == 1
    assert "keeps the options of" in capsys.readouterr().err


def test_an_option_declared_on_a_new_model_reaches_the_command_line(monkeypatch):
    """A model added to the registry brings its flags: nothing in __main__ changes."""

    class Tiny(models.VAE):
        width = Option(int, 3, "[1, 8]", "a width nobody uses")

    monkeypatch.setitem(models.MODELS, "tiny-vae", (Tiny, {"kind": "mlp"}))
    args = parse(["train", "tiny-vae", "--width", "5"])
    assert args.width == 5 and models.build("tiny-vae", width=5).width == 5


def test_a_declaration_whose_default_it_does_not_allow_fails_when_the_class_is_made():
    with pytest.raises(Exception) as info:  # Python < 3.12 wraps it in a RuntimeError

        class Broken(models.GAN):
            z_dim = Option(int, 0, "[1, 8]", "a size whose default is out of range")

    error = info.value.__cause__ or info.value
    assert isinstance(error, ValueError) and "option z_dim must be an integer in" in str(error)
