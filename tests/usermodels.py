"""Networks written the way a user writes them (not from the project's families), with a user's training loop.

Factories (``linen_resnet``, ``nnx_mlp``) return a model with freshly initialized weights, for
``nas search --model tests.usermodels:linen_resnet --weights FILE``; ``train_*`` fit them on digits.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

INPUT_SHAPE = (8, 8, 1)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and an identity shortcut."""

    features: int

    @nn.compact
    def __call__(self, x, train: bool):
        y = nn.Conv(self.features, (3, 3), use_bias=False, name="conv_a")(x)
        y = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn_a")(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False, name="conv_b")(y)
        y = nn.BatchNorm(use_running_average=not train, name="bn_b")(y)
        return nn.relu(x + y)


class LinenResNet(nn.Module):
    """Stem conv + BatchNorm, one residual block, max pool, a strided conv, global mean, dense head."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(12, (3, 3), use_bias=False, name="stem")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="stem_bn")(x))
        x = ResidualBlock(12, name="block")(x, train)
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2), name="down")(x))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(10, name="head")(x)


class LinenWithLayerNorm(nn.Module):
    """Two convs, then a LayerNorm over channels (which the search cannot fold), then a dense head."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv_a")(x))
        x = nn.relu(nn.Conv(8, (3, 3), name="conv_b")(x))
        x = nn.LayerNorm(name="norm")(x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(10, name="head")(x)


class NnxMLP(nnx.Module):
    """Flatten, two hidden layers with relu, a linear head."""

    def __init__(self, rngs: nnx.Rngs):
        self.hidden1 = nnx.Linear(64, 48, rngs=rngs)
        self.hidden2 = nnx.Linear(48, 24, rngs=rngs)
        self.head = nnx.Linear(24, 10, rngs=rngs)

    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = nnx.relu(self.hidden1(x))
        x = nnx.relu(self.hidden2(x))
        return self.head(x)


class NnxConvBN(nnx.Module):
    """An nnx conv with BatchNorm, a depthwise conv, global mean, linear head."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 8, (3, 3), use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.depthwise = nnx.Conv(8, 8, (3, 3), feature_group_count=8, rngs=rngs)
        self.head = nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn(self.conv(x)))
        x = nnx.relu(self.depthwise(x))
        return self.head(x.mean(axis=(1, 2)))


def linen_resnet():
    """Factory: the linen network and freshly initialized variables."""
    model = LinenResNet()
    return model, model.init(jax.random.key(0), jnp.zeros((1, *INPUT_SHAPE)))


def nnx_mlp():
    """Factory: the nnx network (its weights live in the module)."""
    return NnxMLP(nnx.Rngs(0))


def train_linen(model: nn.Module, variables, x: np.ndarray, y: np.ndarray, *, steps: int = 300):
    """A user's training loop: adam; batch statistics updated in train mode when the model has them."""
    optimizer = optax.adam(3e-3)
    params, stats = variables["params"], variables.get("batch_stats")
    state = optimizer.init(params)

    def logits_and_stats(p, stats, xb):
        if stats is None:
            return model.apply({"params": p}, xb), None
        logits, updated = model.apply({"params": p, "batch_stats": stats}, xb, train=True, mutable=["batch_stats"])
        return logits, updated["batch_stats"]

    @jax.jit
    def step(params, stats, state, xb, yb):
        def loss(p):
            logits, new_stats = logits_and_stats(p, stats, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), new_stats

        (_, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), stats, state

    for xb, yb in _batches(x, y, steps):
        params, stats, state = step(params, stats, state, xb, yb)
    return {"params": params} if stats is None else {"params": params, "batch_stats": stats}


def train_nnx(model: nnx.Module, x: np.ndarray, y: np.ndarray, *, steps: int = 300) -> nnx.Module:
    """A user's nnx training loop."""
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()

        grads = nnx.grad(loss)(model)
        optimizer.update(model, grads)

    for xb, yb in _batches(x, y, steps):
        step(model, optimizer, xb, yb)
    return model


def _batches(x: np.ndarray, y: np.ndarray, steps: int, size: int = 64):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        index = rng.integers(0, len(x), size)
        yield jnp.asarray(x[index]), jnp.asarray(y[index])


class LinenSoftmaxHead(nn.Module):
    """A network that returns probabilities instead of logits."""

    @nn.compact
    def __call__(self, x):
        return jax.nn.softmax(nn.Dense(10, name="head")(x.reshape((x.shape[0], -1))))


def linen_softmax_head():
    """Factory: a network the search refuses (its output is not logits)."""
    model = LinenSoftmaxHead()
    return model, model.init(jax.random.key(0), jnp.zeros((1, *INPUT_SHAPE)))


class LinenWithAttention(nn.Module):
    """A conv stem, then self-attention over the 16 positions of a pooled map (tokens), a mean, a dense head."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2), name="stem")(x))
        tokens = x.reshape((x.shape[0], -1, x.shape[-1]))
        tokens = tokens + nn.MultiHeadDotProductAttention(num_heads=2, name="attention")(tokens)
        return nn.Dense(10, name="head")(tokens.mean(axis=1))
