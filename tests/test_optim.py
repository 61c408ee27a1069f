"""SGD, Adam and clip_grad_norm_: update rules against closed forms, in-place
updates, float32 kept, exact resume through state dicts."""

import io
import math

import numpy as np
import pytest
from helpers import arrays, host, t
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen
from minigen import backend, nn, optim
from minigen.nn import functional as F  # noqa: N812 - the PyTorch idiom


def quadratic_grad(p, a):
    """Set p.grad for f(p) = 0.5 * sum(a * p^2), whose gradient is a * p."""
    (0.5 * (t(a, False) * p * p)).sum().backward()


@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 5),
    lr=st.sampled_from([1e-3, 0.01, 0.1]),
    beta1=st.sampled_from([0.0, 0.5, 0.9]),
    beta2=st.sampled_from([0.9, 0.999]),
    weight_decay=st.sampled_from([0.0, 0.1]),
)
def test_adam_first_steps_match_closed_form(data, n, lr, beta1, beta2, weight_decay):
    p0 = data.draw(arrays((n,), 0.5, 2), label="p0") * data.draw(st.sampled_from([-1, 1]))
    a = data.draw(arrays((n,), 0.5, 3), label="curvature")
    eps = 1e-8
    p = nn.Parameter(backend.from_numpy(p0.copy()))
    opt = optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    # The closed form, in float64 on the host.
    q, m, v = p0.copy(), np.zeros(n), np.zeros(n)
    for step in range(1, 5):
        opt.zero_grad()
        quadratic_grad(p, a)
        opt.step()
        g = a * q + weight_decay * q
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
        q = q - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(host(p), q, rtol=1e-12, atol=1e-14)
        if step == 1:  # bias correction makes the first step lr * sign(g), whatever |g|
            np.testing.assert_allclose(host(p), p0 - lr * np.sign(g), rtol=1e-6)


def test_sgd_closed_form_with_momentum_and_weight_decay():
    p0, a = np.array([1.0, -2.0, 0.5]), np.array([1.0, 2.0, 3.0])
    p = nn.Parameter(backend.from_numpy(p0.copy()))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    q, buf = p0.copy(), np.zeros(3)
    for _ in range(4):
        opt.zero_grad()
        quadratic_grad(p, a)
        opt.step()
        buf = 0.9 * buf + (a * q + 0.01 * q)
        q = q - 0.1 * buf
        np.testing.assert_allclose(host(p), q, rtol=1e-13)
    plain = nn.Parameter(backend.from_numpy(p0.copy()))
    opt = optim.SGD([plain], lr=0.5)
    quadratic_grad(plain, a)
    opt.step()
    np.testing.assert_allclose(host(plain), p0 - 0.5 * a * p0, rtol=1e-13)


def test_updates_in_place_keep_float32_and_skip_missing_grads():
    for make in (lambda ps: optim.Adam(ps, 1e-2), lambda ps: optim.SGD(ps, 0.1, momentum=0.9)):
        used = nn.Parameter(backend.ones((3,)))
        unused = nn.Parameter(backend.ones((2,)))
        opt = make([used, unused])
        data = used.data
        (used * used).sum().backward()
        opt.step()
        assert used.data is data and used.dtype == np.float32
        assert not np.allclose(host(used), 1)
        np.testing.assert_array_equal(host(unused), 1)
        assert 1 not in opt.state
        for value in opt.state[0].values():
            if backend.is_array(value):
                assert value.dtype == np.float32


def test_optimizers_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, x = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((8, 3))
    x = x.astype(np.float32)
    cases = [
        (lambda ps: optim.Adam(ps, 1e-2, (0.5, 0.999), weight_decay=0.01),
         lambda ps: torch.optim.Adam(ps, 1e-2, (0.5, 0.999), weight_decay=0.01)),
        (lambda ps: optim.SGD(ps, 0.05, momentum=0.9, weight_decay=0.01),
         lambda ps: torch.optim.SGD(ps, 0.05, momentum=0.9, weight_decay=0.01)),
    ]  # fmt: skip
    for ours_opt, theirs_opt in cases:
        ours = nn.Parameter(backend.from_numpy(w0.copy()))
        theirs = torch.nn.Parameter(torch.tensor(w0))
        o1, o2 = ours_opt([ours]), theirs_opt([theirs])
        for _ in range(10):
            o1.zero_grad()
            o2.zero_grad()
            (F.linear(t(x, False), ours) ** 2).mean().backward()
            ((torch.tensor(x) @ theirs.T) ** 2).mean().backward()
            o1.step()
            o2.step()
        np.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def _model():
    minigen.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _train(model, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        F.mse_loss(model(t(x, False)), y).backward()
        opt.step()


def _npz_round_trip(state):
    """Through a real .npz file, as a checkpoint would go."""
    buffer = io.BytesIO()
    np.savez(
        buffer, **{k: backend.to_numpy(v) if backend.is_array(v) else v for k, v in state.items()}
    )
    buffer.seek(0)
    return dict(np.load(buffer))


@pytest.mark.parametrize(
    "make",
    [lambda ps: optim.Adam(ps, 1e-2, (0.5, 0.999)), lambda ps: optim.SGD(ps, 0.1, momentum=0.9)],
)
def test_resume_from_state_dicts_is_bit_exact(make):
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.standard_normal((6, 4)).astype(np.float32),
            rng.standard_normal((6, 2)).astype(np.float32),
        )
        for _ in range(5)
    ]
    model = _model()
    opt = make(model.parameters())
    _train(model, opt, batches[:3])
    saved_model = _npz_round_trip(model.state_dict())
    saved_opt = _npz_round_trip(opt.state_dict())
    _train(model, opt, batches[3:])

    resumed = _model()
    resumed_opt = make(resumed.parameters())
    resumed.load_state_dict(saved_model)
    resumed_opt.load_state_dict(saved_opt)
    _train(resumed, resumed_opt, batches[3:])
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        np.testing.assert_array_equal(host(a), host(b), err_msg=name)


def test_optimizer_state_dict_is_flat_and_a_snapshot():
    p = nn.Parameter(backend.ones((2,)))
    opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.9))
    (p * p).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["lr"] == 0.1 and sd["beta1"] == 0.5 and sd["beta2"] == 0.9
    assert sd["state.0.step"] == 1
    before = host(sd["state.0.exp_avg"]).copy()
    opt.step()
    np.testing.assert_array_equal(host(sd["state.0.exp_avg"]), before)


def test_optimizer_load_state_dict_names_bad_entries():
    p = nn.Parameter(backend.ones((2, 3)))
    opt = optim.Adam([p])
    bad = {
        "lr": 1e-3, "beta1": 0.9, "eps": 1e-8, "weight_decay": 0.0,  # beta2 missing
        "state.0.step": 1, "state.0.exp_avg": np.zeros((3, 2)),
        "state.0.exp_avg_sq": np.zeros((2, 3)),
        "state.1.step": 1, "momentum": 0.9,
    }  # fmt: skip
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    message = str(info.value)
    for part in ["'beta2'", "state.0.exp_avg'", "(3, 2)", "'momentum'", "state.1.step"]:
        assert part in message, part
    assert opt.state == {}  # nothing changed


def test_clip_grad_norm():
    a, b = nn.Parameter(backend.zeros((2,))), nn.Parameter(backend.zeros((1,)))
    ga = backend.from_numpy(np.array([3.0, 0.0], np.float32))
    a.grad, b.grad = ga, backend.from_numpy(np.array([4.0], np.float32))
    norm = optim.clip_grad_norm_([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(host(a.grad), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(host(b.grad), [0.8], rtol=1e-5)
    np.testing.assert_array_equal(host(ga), [3.0, 0.0])  # replaced, not changed in place
    assert a.grad.dtype == np.float32
    assert optim.clip_grad_norm_([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(host(a.grad), [0.6, 0.0], rtol=1e-5)  # below max: untouched
    b.grad = backend.from_numpy(np.array([math.nan], np.float32))
    with pytest.raises(FloatingPointError, match="not finite"):
        optim.clip_grad_norm_([a, b], 1.0)


def test_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="parameter 0"):
        optim.SGD([backend.zeros((2,))], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(nn.Linear(2, 2).parameters(), betas=(0.9, 1.0))
