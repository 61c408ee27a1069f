# %% [markdown]
# # Lesson 04: DCGAN, convolutions in both players
#
# The MLP GAN of lesson 03 must learn every pixel's relation to every other.
# DCGAN (Radford et al. 2016) builds both networks from convolutions, with
# three habits that make GAN training far steadier:
#
# - **Transposed convolutions** in G upsample 7x7 -> 14x14 -> 28x28. A
#   transposed convolution is the adjoint (the backward pass) of a strided
#   convolution: each input pixel paints a 4x4 patch of the output, weighted by
#   a learned kernel (lesson 02).
# - **BatchNorm** in G (and in D's middle layer) keeps activations at a steady
#   scale, so neither network saturates while the other changes under it.
# - **LeakyReLU** (slope 0.2) in D keeps a gradient for negative inputs, so G
#   learns from every sample D rejects. D has no pooling: strided convolutions
#   learn their own downsampling. Weights start from N(0, 0.02).
#
# We measure quality after every epoch with a Fréchet distance: the distance
# between the Gaussians fitted to classifier features of real test images and
# of 5,000 samples (the idea of FID, in the feature space of a small
# Fashion-MNIST classifier rather than Inception). Lower is better.
#
# Full run (5 epochs): 37 minutes measured on 2 busy CPU cores, one thread;
# less on an idle machine. `--quick`: seconds.

# %%
from _setup import setup

from minigen import backend, data, metrics, plots
from minigen.classifier import load_classifier
from minigen.models import sample_images
from minigen.train import train

args, out, train_images, test_images, _ = setup("04_dcgan", "Lesson 04: DCGAN", epochs=5)
classifier = load_classifier(args.dataset)
n_eval = min(5000, len(test_images))


fd, coverage = [], []


def watch(model, epoch, history):
    backend.manual_seed(1000 + epoch)
    fake = sample_images(model, n_eval)
    fd.append(metrics.fid(test_images[:n_eval], fake, classifier))
    shares, covered = metrics.class_coverage(fake, classifier)
    coverage.append(covered)
    plots.image_grid(
        fake[:64], out / f"samples_epoch{epoch + 1}.png", title=f"dcgan, epoch {epoch + 1}"
    )
    print(f"  epoch {epoch + 1}: Fréchet distance {fd[-1]:.2f}, {covered} of 10 classes >= 5%")


# %% [markdown]
# ## Train, with a Fréchet distance after each epoch

# %%
model, _, history = train(
    "dcgan", args.epochs, images=train_images, seed=args.seed, on_epoch_end=watch
)
shares, covered = metrics.class_coverage(sample_images(model, n_eval), classifier)
print(
    "class shares: "
    + ", ".join(f"{c} {100 * p:.0f}%" for c, p in zip(data.CLASSES[args.dataset], shares))
)
real_fd = metrics.fid(test_images[:n_eval], data.scale_pixels(train_images[:n_eval]), classifier)
print(f"for scale: real training images vs real test images score {real_fd:.2f}")

plots.loss_curves(
    {"Fréchet distance": fd}, out / "frechet.png", title="dcgan: Fréchet distance per epoch"
)
plots.loss_curves(
    {"D": history["d_loss"], "G": history["g_loss"]},
    out / "losses.png",
    title="dcgan losses per step",
)
print(f"saved samples per epoch, frechet.png and losses.png in {out}/")

# %% [markdown]
# Compare `samples_epoch1.png` with the last epoch: shapes first, then
# textures. The D and G losses do not fall together; in a GAN they measure the
# balance of the game, not the quality of the samples. That is why we keep a
# separate measure, the Fréchet distance, and the class coverage.
