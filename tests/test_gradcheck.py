"""minigen.gradcheck must pass correct gradients and catch wrong ones, readably."""

import numpy as np
import pytest
from helpers import host, t

import minigen
from minigen import GradcheckError, gradcheck
from minigen.autograd import Function


class Square(Function):
    """x**2 with a backward that can be made wrong by a factor."""

    factor = 2.0

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, grad):
        return grad * self.factor * self.a


class HalfSquare(Square):
    factor = 1.0  # the classic bug: forgot the 2


class MulSecondWrong(Function):
    """a * b whose gradient for b is wrong (uses b instead of a)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return grad * self.b, grad * self.b


def test_correct_gradient_passes_with_a_small_error():
    x = t(np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.7]]))
    err = gradcheck(Square.apply, x)
    assert isinstance(err, float) and 0.0 <= err < 1e-7
    err = gradcheck(lambda a, b: (a * b).tanh().sum(axis=1), x, t(np.full((2, 3), 0.3)))
    assert err < 1e-7


def test_wrong_backward_is_caught_with_a_readable_report():
    a = np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.7]])
    x = t(a)
    with pytest.raises(GradcheckError) as info:
        gradcheck(HalfSquare.apply, x)
    message = str(info.value)
    assert "input 0" in message and "(2, 3)" in message
    assert "element (" in message and "analytic" in message and "numeric" in message
    assert "tol" in message
    # the reported element's values are the real ones: analytic is half of numeric
    analytic, numeric = (float(message.split(k)[1].split()[0]) for k in ("analytic ", "numeric "))
    assert numeric == pytest.approx(2 * analytic, rel=1e-5)
    assert isinstance(info.value, AssertionError)  # pytest reports it as a failed check


def test_report_names_the_wrong_input():
    a, b = t(np.array([1.0, 2.0])), t(np.array([0.5, -1.5]))
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(MulSecondWrong.apply, a, b)
    # with b constant, the wrong gradient for b is never used: the check passes
    assert gradcheck(MulSecondWrong.apply, a, t(np.array([0.5, -1.5]), requires_grad=False)) < 1e-7


def test_small_errors_need_a_looser_tolerance():
    class SlightlyOff(Square):
        factor = 2.001

    x = t(np.array([0.5, 1.0, 1.5]))
    with pytest.raises(GradcheckError):
        gradcheck(SlightlyOff.apply, x)
    assert gradcheck(SlightlyOff.apply, x, tol=1e-2) < 1e-2


def test_rejects_float32_inputs():
    x = minigen.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    with pytest.raises(TypeError, match="float32.*float64"):
        gradcheck(Square.apply, x)


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(Square.apply, t(np.array([1.0]), requires_grad=False))


def test_inputs_are_left_as_they_were():
    a = np.array([[0.5, -1.0], [2.0, 0.25]])
    x = t(a)
    gradcheck(lambda x: x.exp() * x, x)
    np.testing.assert_array_equal(host(x), a)


def test_non_contiguous_input_and_unused_input():
    a = np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.7]])
    x = minigen.Tensor(t(a).data.T, requires_grad=True)  # a transposed view
    assert gradcheck(lambda x: x * x, x) < 1e-7
    unused = t(np.array([1.0, 2.0]))
    assert gradcheck(lambda x, u: x.sum(), t(a), unused) < 1e-7
    assert gradcheck(lambda x: x.sum(), t(np.array(1.5))) < 1e-7  # a 0-d input
