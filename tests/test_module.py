"""Module, Parameter, Sequential, state dicts and initialisers.

Names and shapes must follow PyTorch's so a state dict can move across;
save/load must round-trip bit-exactly and refuse dicts that do not fit,
naming every bad entry.
"""

import math

import numpy as np
import pytest
from helpers import host, t

import minigen
from minigen import backend, nn
from minigen.nn import init


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Block()
        self.heads = [nn.Linear(4, 2), nn.Linear(4, 2, bias=False)]
        self.scale = nn.Parameter(backend.ones((1,)))
        self.not_a_parameter = minigen.tensor([1.0, 2.0])

    def forward(self, x):
        h = self.encoder(x)
        return self.heads[0](h) * self.scale + self.heads[1](h)


def test_named_parameters_are_dotted_in_assignment_order():
    # As PyTorch: a module's own parameters first, then each submodule's.
    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "scale",
        "encoder.fc.weight",
        "encoder.fc.bias",
        "encoder.bn.weight",
        "encoder.bn.bias",
        "heads.0.weight",
        "heads.0.bias",
        "heads.1.weight",
    ]
    net = Net()
    assert net.parameters() == [p for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_state_dict_has_parameters_and_buffers_in_pytorch_order():
    sd = Net().state_dict()
    assert list(sd)[:8] == [
        "scale",
        "encoder.fc.weight",
        "encoder.fc.bias",
        "encoder.bn.weight",
        "encoder.bn.bias",
        "encoder.bn.running_mean",
        "encoder.bn.running_var",
        "encoder.bn.num_batches_tracked",
    ]
    assert "not_a_parameter" not in sd
    assert sd["encoder.fc.weight"].shape == (4, 3)  # Linear weight is (out, in)


def test_shared_parameter_counted_once():
    fc, bn = nn.Linear(2, 2), nn.BatchNorm1d(2)
    model = nn.Sequential(fc, bn, nn.ReLU(), fc, bn)
    assert len(model.parameters()) == 4
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias",
        "1.running_mean", "1.running_var", "1.num_batches_tracked",
    ]  # fmt: skip


def test_sequential_indexing_len_and_call():
    a, b = nn.Linear(3, 5), nn.Tanh()
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    x = t(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32), False)
    np.testing.assert_array_equal(host(seq(x)), host(b(a(x))))
    with pytest.raises(TypeError, match="part 1"):
        nn.Sequential(a, lambda x: x)


def test_train_eval_are_recursive_and_return_self():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.encoder.bn.training and not net.heads[1].training


def test_zero_grad_clears_every_gradient():
    net = Net()
    x = t(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32), False)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def _train_a_little(net):
    x = t(np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32), False)
    for p in net.parameters():  # move every value away from its initial one
        p.data[...] = backend.randn(*p.shape)
    net(x)  # updates BatchNorm's running statistics


def test_state_dict_round_trip_is_bit_exact_through_host_arrays():
    a, b = Net(), Net()
    _train_a_little(a)
    saved = {k: host(v) for k, v in a.state_dict().items()}  # what a .npz file holds
    b.load_state_dict(saved)
    for k, v in b.state_dict().items():
        assert host(v).dtype == saved[k].dtype
        np.testing.assert_array_equal(host(v), saved[k])
    assert int(host(b.encoder.bn.num_batches_tracked)) == 1


def test_load_state_dict_copies_in_place_and_casts():
    net = Net()
    weight = net.encoder.fc.weight
    data_before = weight.data
    sd = {k: host(v).astype(np.float64) + 1 for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    assert net.encoder.fc.weight is weight and weight.data is data_before
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(host(weight), sd["encoder.fc.weight"].astype(np.float32))


def test_state_dict_is_a_snapshot():
    net = nn.Linear(2, 2)
    sd = net.state_dict()
    before = host(sd["weight"]).copy()
    net.weight.data[...] = 0
    np.testing.assert_array_equal(host(sd["weight"]), before)


def test_load_state_dict_names_missing_unexpected_and_misshaped():
    net = Net()
    sd = net.state_dict()
    del sd["encoder.fc.bias"]
    sd["decoder.weight"] = sd["scale"]
    sd["heads.0.weight"] = backend.zeros((3, 4))
    before = {k: host(v) for k, v in net.state_dict().items()}
    with pytest.raises(KeyError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    assert "encoder.fc.bias" in message and "missing" in message
    assert "decoder.weight" in message and "unexpected" in message
    assert "heads.0.weight" in message and "(2, 4)" in message and "(3, 4)" in message
    for k, v in net.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(host(v), before[k])


def test_load_state_dict_misshaped_alone_is_a_value_error():
    net = nn.Linear(3, 2)
    sd = net.state_dict()
    sd["bias"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"bias: expected \(2,\), got \(3,\)"):
        net.load_state_dict(sd)


def test_parameter_wraps_arrays_and_tensors():
    p = nn.Parameter(backend.zeros((2, 3)))
    q = nn.Parameter(minigen.tensor([1.0, 2.0]))
    assert p.requires_grad and q.requires_grad and isinstance(q, minigen.Tensor)
    assert q.dtype == np.float32 and p.shape == (2, 3)


def test_repr_names_layers():
    text = repr(nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2)))
    assert "(0): Conv2d(1, 8, kernel_size=4, stride=2, padding=1" in text
    assert "(1): LeakyReLU(negative_slope=0.2)" in text


# ------------------------------------------------------------------ initialisers


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Linear(300, 200), 300),
        (lambda: nn.Conv2d(16, 32, 4), 16 * 16),
        (lambda: nn.ConvTranspose2d(32, 16, 4), 16 * 16),  # PyTorch: fan-in from weight.shape[1]
    ],
)
def test_default_init_is_pytorch_uniform(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = host(layer.weight), host(layer.bias)
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # uses the whole range, not a smaller one
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-b, b)


def test_batchnorm_starts_as_identity():
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(host(bn.weight), np.ones(5, np.float32))
    np.testing.assert_array_equal(host(bn.bias), np.zeros(5, np.float32))
    np.testing.assert_array_equal(host(bn.running_mean), np.zeros(5, np.float32))
    np.testing.assert_array_equal(host(bn.running_var), np.ones(5, np.float32))


def test_init_functions_fill_in_place_in_the_tensors_dtype():
    p = nn.Parameter(backend.zeros((1000,)))
    data = p.data
    init.normal_(p, 3.0, 0.5)
    assert p.data is data and p.dtype == np.float32
    assert abs(host(p).mean() - 3) < 0.1 and abs(host(p).std() - 0.5) < 0.05
    init.uniform_(p, -2.0, -1.0)
    assert host(p).min() >= -2 and host(p).max() < -1
    init.ones_(p)
    np.testing.assert_array_equal(host(p), 1)
    init.zeros_(p)
    np.testing.assert_array_equal(host(p), 0)
    q = t(np.zeros(500))
    init.normal_(q)
    assert q.dtype == np.float64 and host(q).std() > 0.5


def test_same_seed_same_weights():
    minigen.manual_seed(7)
    a = nn.Conv2d(3, 4, 3)
    minigen.manual_seed(7)
    b = nn.Conv2d(3, 4, 3)
    np.testing.assert_array_equal(host(a.weight), host(b.weight))


def test_state_dict_moves_to_and_from_pytorch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(
        nn.Linear(8, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Unflatten((1, 4, 4)),
        nn.ConvTranspose2d(1, 3, 4, 2, 1),
        nn.BatchNorm2d(3),
        nn.Conv2d(3, 2, 4, 2, 1),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Unflatten(1, (1, 4, 4)),
        torch.nn.ConvTranspose2d(1, 3, 4, 2, 1),
        torch.nn.BatchNorm2d(3),
        torch.nn.Conv2d(3, 2, 4, 2, 1),
    )
    theirs_sd = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(theirs_sd) == list(ours.state_dict())
    ours.load_state_dict(theirs_sd)
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(host(ours(t(x, False))), expected, rtol=1e-4, atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(host(ours.state_dict()[k]), v.numpy(), rtol=1e-5, atol=1e-6)


def test_eval_mode_restores_each_modules_own_mode_even_after_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))
    net[1].eval()  # a mixed state: eval_mode must give back exactly this
    before = [m.training for m in net.modules()]
    with nn.eval_mode(net) as inside:
        assert inside is net and not any(m.training for m in net.modules())
        assert not minigen.is_grad_enabled()
        assert not net[0](t(np.ones((3, 2)), requires_grad=True)).requires_grad
    assert [m.training for m in net.modules()] == before and minigen.is_grad_enabled()
    with pytest.raises(RuntimeError, match="boom"), nn.eval_mode(net):
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before and minigen.is_grad_enabled()


def test_initialisers_fill_plain_backend_arrays():
    minigen.manual_seed(0)
    a = backend.zeros((200, 50))
    assert init.normal_(a, 1.0, 0.5) is a
    assert abs(float(host(a).mean()) - 1.0) < 0.02 and abs(float(host(a).std()) - 0.5) < 0.02
    init.kaiming_uniform_(a)
    assert float(abs(host(a)).max()) <= 1 / math.sqrt(50) and a.dtype == np.float32
    init.zeros_(a)
    np.testing.assert_array_equal(host(a), 0)
