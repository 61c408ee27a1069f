"""minigen.gradcheck must pass correct gradients and catch wrong ones, readably."""

import numpy as np
import pytest
from helpers import host, t

import minigen
from minigen import GradcheckError, backend, gradcheck, gradgradcheck
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


# ------------------------------------------------------------ second derivatives


class Cube(Function):
    """x**3, its backward written on saved_tensors: differentiable again."""

    def forward(self, a):
        self.save_for_backward(a)
        return a * a * a

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * 3 * a * a


class CubeWithConstantBackward(Function):
    """x**3 whose backward reads x from a plain attribute: a constant. Its first
    derivative is right; its second is zero instead of 6x."""

    def forward(self, a):
        self.a = a
        return a * a * a

    def backward(self, grad):
        return grad * 3 * minigen.Tensor(self.a * self.a)


def test_gradgradcheck_passes_a_correct_second_derivative():
    x = t(np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.7]]))
    err = gradgradcheck(Cube.apply, x)
    assert isinstance(err, float) and 0.0 <= err < 1e-7
    a, b = t(np.array([0.5, -1.2]), requires_grad=True), t(np.array([0.3, 0.8]))
    assert gradgradcheck(lambda a, b: (a * b).tanh() * a, a, b) < 1e-7


def test_gradgradcheck_catches_a_wrong_second_derivative_with_a_right_first():
    a = np.array([[0.5, -1.0, 2.0], [1.5, -0.3, 0.7]])
    assert gradcheck(CubeWithConstantBackward.apply, t(a)) < 1e-7  # first: right
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(CubeWithConstantBackward.apply, t(a))
    message = str(info.value)
    assert "input 0" in message and "(2, 3)" in message and "element (" in message
    # the second derivative autograd found is 0; the numeric one is 6 x r_first
    analytic, numeric = (float(message.split(k)[1].split()[0]) for k in ("analytic ", "numeric "))
    assert analytic == 0.0 and abs(numeric) > 1e-3


def test_gradgradcheck_names_the_input_whose_second_derivative_is_wrong():
    """A mixed second derivative: the Function's backward for b is linear in a
    constant copy of a, so d/da (dL/db) is lost: input 0 is reported, and with
    a constant the check passes."""

    class MulConstantInB(Function):
        def forward(self, a, b):
            self.save_for_backward(b)
            self.a = a
            return a * b

        def backward(self, grad):
            (b,) = self.saved_tensors
            return grad * b, grad * minigen.Tensor(self.a)

    a, b = t(np.array([1.0, 2.0])), t(np.array([0.5, -1.5]))
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(MulConstantInB.apply, a, b)
    assert gradgradcheck(MulConstantInB.apply, a, t(np.array([0.5, -1.5]), False)) < 1e-7


def test_gradgradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires grad"):
        gradgradcheck(Cube.apply, t(np.array([1.0]), requires_grad=False))


def test_gradgradcheck_leaves_inputs_and_grads_as_they_were():
    a = np.array([[0.5, -1.0], [2.0, 0.25]])
    x = t(a)
    gradgradcheck(lambda x: x.exp() * x, x)
    np.testing.assert_array_equal(host(x), a)


# ------------------------------------------------------------------------- NaN


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_nan_gradients_fail(check):
    """A NaN on either side fails: comparing NaN with anything is False, so a
    check written as "error > tol" would pass it."""
    x = t(np.array([0.5, 1.0, 2.0]))
    with pytest.raises(GradcheckError) as info:
        check(lambda x: x * float("nan"), x)
    assert "input 0" in str(info.value) and "nan" in str(info.value).lower()


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_sqrt_outside_its_domain_fails(check):
    """sqrt at -1 (NaN) and at 0 (an infinite derivative; NaN one step to the left)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2,\)\), element \(0,\)"):
            check(lambda a: a.sqrt(), t(np.array([-1.0, 0.0])))
        # the first gradient is infinite at 0, so every difference of it is NaN; sqrt itself
        # is finite there, and only the element at 0 fails
        where = r"element \(1,\)" if check is gradcheck else "input 0"
        with pytest.raises(GradcheckError, match=where):
            check(lambda a: a.sqrt(), t(np.array([2.0, 0.0])))


class PoisonAtOne(Function):
    """The identity whose backward puts a NaN at element 1 (a finite forward:
    the finite differences stay finite, only autograd's side is NaN)."""

    def forward(self, a):
        self.size = a.size
        return a.copy()

    def backward(self, grad):
        mask = np.ones(self.size)
        mask[1] = np.nan
        return grad * minigen.Tensor(backend.from_numpy(mask).reshape(grad.shape))


class CubePoisonedSecond(Function):
    """x**3 with a right first derivative whose own derivative is NaN at element 1."""

    def forward(self, a):
        self.save_for_backward(a)
        return a * a * a

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * 3 * PoisonAtOne.apply(a) * a


def test_nan_reports_name_the_input_and_the_element():
    good, x = t(np.array([1.0, 4.0])), t(np.array([0.5, 1.5, 2.0]))
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: minigen.concatenate([a * a, PoisonAtOne.apply(b)]), good, x)
    assert "input 1 (shape (3,)), element (1,): analytic nan" in str(info.value)
    assert gradcheck(CubePoisonedSecond.apply, x) < 1e-7  # the first derivative is fine
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(lambda a, b: (a * a).sum() * CubePoisonedSecond.apply(b), good, x)
    assert "input 1 (shape (3,)), element (1,): analytic nan" in str(info.value)
