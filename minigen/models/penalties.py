"""Gradient penalties: terms of a critic's loss built from its input gradient.

Both differentiate the critic with respect to its *input*, ``minigen.grad(...,
create_graph=True)``, and the penalty on that gradient is then differentiated
again with respect to the critic's weights by the ordinary ``backward``.

- ``gradient_penalty`` (WGAN-GP, Gulrajani et al. 2017) asks for slope 1 on
  points between real and fake samples: the Wasserstein critic must be
  1-Lipschitz, and the optimal one has gradient norm 1 along those lines.
- ``r1_penalty`` (Mescheder et al. 2018) asks for slope 0 on real samples:
  at the equilibrium D should be flat where the data is, which stops D and G
  from circling around it.

They live here, not in wgan.py, so that gan.py (R1) and wgan.py (which builds
on gan.py's generator) both import them without an import circle.
"""

from minigen import backend
from minigen.autograd import Tensor, grad


def _array(x):
    """The array behind a Tensor (cut from its graph), or the array itself."""
    return x.data if isinstance(x, Tensor) else x


def input_gradient(critic, x):
    """d sum(critic(x)) / dx, a Tensor of x's shape that can be differentiated again.

    ``x`` is a leaf made here from the values given (cut from any graph).
    Summing the outputs gives each sample's own gradient in its row, as long
    as the critic treats samples independently (no BatchNorm).
    """
    x = Tensor(_array(x), requires_grad=True)
    (g,) = grad(critic(x).sum(), x, create_graph=True)
    return g


def squared_norms(g):
    """||g_i||^2 of each sample's flattened gradient: (N, ...) -> (N,)."""
    return (g * g).reshape(g.shape[0], -1).sum(axis=1)


def gradient_penalty(critic, real, fake, eps=None):
    """WGAN-GP's penalty E[(||grad_xhat critic(xhat)||_2 - 1)^2], a scalar Tensor.

    xhat = eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per sample, of
    shape (N, 1, ..., 1) so that it broadcasts over the sample's other axes;
    drawn with minigen's generator in the data's dtype unless ``eps`` is
    given. real and fake are (N, ...) of any shape (images, or 2-D points);
    they are constants here (fake's generator gets no gradient from the
    penalty). The norm is over each flattened sample.
    """
    real, fake = _array(real), _array(fake)
    if eps is None:
        eps = backend.rand(real.shape[0], *(1,) * (real.ndim - 1), dtype=real.dtype)
    eps = _array(eps)
    norms = squared_norms(input_gradient(critic, eps * real + (1 - eps) * fake)).sqrt()
    return ((norms - 1) ** 2).mean()


def r1_penalty(discriminator, real):
    """E_x ||grad_x D(x)||^2 over real samples x (Mescheder et al. 2018), a scalar Tensor.

    D(x) is the discriminator's logit. The R1 regulariser is
    gamma / 2 * r1_penalty(D, real), added to D's loss; the caller multiplies
    by gamma / 2. It runs D once more on ``real`` (with BatchNorm, its running
    statistics see that batch once more).
    """
    return squared_norms(input_gradient(discriminator, real)).mean()
