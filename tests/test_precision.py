"""model.dtype = bfloat16 and training.remat on tiny NCSN++, DDPM++, DDPM and NCSNv2 networks.

bfloat16 keeps 8 significand bits (relative rounding 2^-9 = 0.2%), so a bf16 loss and gradient
differ from float32 by about 1%; the tolerances below are ~3x what these nets give. Remat only
recomputes float32 activations in the backward pass: its gradients equal the plain ones to 1e-5.
The networks are built from the configs through workflows/build.py, so the config keys are tested.
"""
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import load_config
from training.state import create_train_state
from training.step import make_train_step
from workflows import build

pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")
CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"
TINY_UNET = {"model.nf": 16, "model.ch_mult": (1, 2), "model.num_res_blocks": 1,
             "model.attn_resolutions": (4,), "data.image_size": 8, "model.init_scale": 1.0}
FAMILIES = {  # name: (config, overrides)
    "ncsnpp": ("ve/ncsnpp_cifar10_continuous.py", TINY_UNET),   # BigGAN blocks, FIR, Fourier
    "ddpmpp": ("vp/ddpmpp_cifar10_continuous.py", TINY_UNET),   # DDPM++ blocks, positional
    "ddpm": ("vp/ddpm_cifar10_continuous.py", {**TINY_UNET, "model.init_scale": 0.0}),
    "ncsnv2": ("ve/ncsnv2_cifar10.py", {"model.nf": 8, "data.image_size": 8}),  # discrete SMLD
}
BATCH = 4
LOSS_RTOL = 2e-2       # |loss_bf16 - loss_f32| / loss_f32
GRAD_RTOL = 5e-2       # ||g_bf16 - g_f32|| / ||g_f32|| over all parameters
REMAT_RTOL = 1e-5      # remat vs no remat (float32), every entry, relative to the largest gradient


def _config(family, **overrides):
  path, base = FAMILIES[family]
  return load_config(str(CONFIGS / path), {**base, **overrides})


def _score_model(config):
  return build.build_score_model(config, build.build_sde(config))


def _wake_zero_init(params, key):
  """Replaces kernels initialised to ~0 (DDPM's last convs: scale 1e-10) by N(0, 1/fan_in)
  draws, so every branch of the network carries signal and gradient."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  new = [p if p.ndim < 2 or float(jnp.std(p)) > 1e-6 else
         jax.random.normal(k, p.shape) / np.sqrt(np.prod(p.shape[:-1])) for p, k in zip(leaves, keys)]
  return jax.tree.unflatten(tree, new)


@functools.cache
def _inputs(family):
  """(float32 params, batch (B, 8, 8, 3) in [0, 1], step rng), shared by every variant."""
  config = _config(family)
  init = jax.jit(lambda key: _score_model(config).init(key, build.example_batch(config)))
  params = _wake_zero_init(init(jax.random.key(0)), jax.random.key(1))
  batch = jax.random.uniform(jax.random.key(2), (BATCH, *build.data_info(config).shape))
  return params, batch, jax.random.key(3)


@functools.cache
def _loss_and_grads(family, dtype="float32", remat=False):
  """Loss (float) and gradients (numpy tree) of the family's training loss (dropout on)."""
  config = _config(family, **{"model.dtype": dtype, "training.remat": remat})
  sde = build.build_sde(config)
  loss_fn = build.build_loss(config, sde, _score_model(config))
  params, batch, rng = _inputs(family)
  (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params, batch, rng)
  assert loss.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
  return float(loss), jax.tree.map(np.asarray, grads)


def _global_norm(tree):
  return float(np.sqrt(sum(np.sum(np.square(x, dtype=np.float64)) for x in jax.tree.leaves(tree))))


# 80-120 s each on 2 cores (compiling f32 and bf16 gradients): DDPM in the fast suite, the rest slow
# (as their remat checks, 16-23 s each, which share the float32 gradients with them).
GRADIENT_CASES = [f if f == "ddpm" else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES]


@pytest.mark.parametrize("family", GRADIENT_CASES)
def test_bf16_loss_and_gradients_match_float32(family):
  loss32, grads32 = _loss_and_grads(family)
  loss16, grads16 = _loss_and_grads(family, "bfloat16")
  diff = jax.tree.map(np.subtract, grads16, grads32)
  grad_err = _global_norm(diff) / _global_norm(grads32)
  assert abs(loss16 - loss32) / loss32 < LOSS_RTOL, (loss16, loss32)
  assert grad_err < GRAD_RTOL, grad_err
  assert grad_err > 1e-4, "bf16 gives float32's gradients: is it computing in bf16 at all?"


@pytest.mark.parametrize("family", GRADIENT_CASES)
def test_remat_gradients_equal_no_remat(family):
  loss, grads = _loss_and_grads(family)
  loss_remat, grads_remat = _loss_and_grads(family, remat=True)
  assert loss_remat == pytest.approx(loss, rel=REMAT_RTOL)
  # Relative to the largest gradient entry of the network: arrays whose exact gradient is ~0
  # (biases before a normalisation) differ by rounding only, which a per-array scale would inflate.
  scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(grads))
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_remat)):
    np.testing.assert_allclose(r, g, rtol=0, atol=REMAT_RTOL * scale)


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_convolutions_run_in_bf16_and_the_score_is_float32(family):
  config = _config(family, **{"model.dtype": "bfloat16"})
  score_model = _score_model(config)
  params, batch, _ = _inputs(family)
  t = jnp.full((BATCH,), 0.5)
  jaxpr = str(jax.make_jaxpr(lambda p: score_model.score(p, batch, t))(params))
  convs = [line.split("=")[0].split(":")[-1] for line in jaxpr.splitlines()
           if "= conv_general_dilated" in line]
  assert convs and all(c.strip().startswith("bf16") for c in convs), convs
  assert jax.eval_shape(lambda p: score_model.score(p, batch, t), params).dtype == jnp.float32


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_remat_train_step_keeps_float32_params_and_adam_state(family):
  config = _config(family, **{"model.dtype": "bfloat16", "training.remat": True})
  sde = build.build_sde(config)
  score_model = _score_model(config)
  optimizer = build.build_optimizer(config)
  step = make_train_step(build.build_loss(config, sde, score_model), optimizer, 0.999)
  params, batch, rng = _inputs(family)
  state = create_train_state(params, optimizer)
  new_state, metrics = jax.eval_shape(step, state, batch, rng)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)  # same names as float32
  floats = [x for x in jax.tree.leaves(new_state) if jnp.issubdtype(x.dtype, jnp.floating)]
  assert floats and all(x.dtype == jnp.float32 for x in floats)
  assert metrics["loss"].dtype == jnp.float32


def test_unknown_dtype_and_unsupported_network_fail_with_the_choices():
  with pytest.raises(ValueError, match=r"model.dtype 'float16'.*\['bfloat16', 'float32'\]"):
    build.check_config(_config("ncsnpp", **{"model.dtype": "float16"}))
  toy = load_config(str(CONFIGS / "toy.py"))
  toy.unlock()
  toy.model.dtype = "bfloat16"
  with pytest.raises(ValueError, match="model.dtype='float32'"):
    _score_model(toy)
  toy.model.dtype = "float32"
  toy.training.remat = True
  with pytest.raises(ValueError, match="training.remat=False"):
    _score_model(toy)
