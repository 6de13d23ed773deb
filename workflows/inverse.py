"""--mode=sample for linear inverse problems (sampling.task inpaint | colorize | super_resolution):
conditional samples given observations y = A x + sigma_y n of inputs from the test split or a
file, sigma_y = sampling.observation_noise (0: noise-free).

The observation noise of input k is n_k = A A^+ z_k, z_k ~ N(0, I) in y's shape drawn from
fold_in(fold_in(key(seed), OBSERVATION_STREAM), k): white in y-space (zero where a mask hides a
pixel) and the same whatever the batch size.

Sample j of input k has the global index k * samples_per_input + j and the sampling stream's key
folded with it, so samples do not depend on batch size or device count. Writes
WORKDIR/samples/TASK_INVERSEMETHOD_METHOD_STEPS.npz (samples (K, S, ...), observations (K, ...) =
y, inputs (K, ...), masks where a mask applies, nfe), .png: rows [observation | samples | ground
truth] (images) or a scatter (points), and .json: the sampling settings (outputs.write_samples).
"""
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import conditioning
import data_sources
import samplers
from configs.errors import UserError
from parallel import DataParallel
from workflows import build, outputs
from workflows.batches import map_global_batches

INPUT_SOURCES = ("test", "file")
OBSERVATION_STREAM = 0x0B5E_0001  # apart from workflows.build.RNG_STREAMS (0, 1, 2)


def _build_mask(config, shape: tuple) -> np.ndarray:
  s = config.sampling
  return conditioning.make_mask(
      s.mask, shape, box_size=s.mask_box_size, box_top=s.mask_box_top, box_left=s.mask_box_left,
      fraction=s.mask_fraction, seed=s.mask_seed, path=s.mask_path,
      observed_coords=tuple(s.observed_coords))


def build_observation(config, shape: tuple):
  """The linear observation of config.sampling.task for examples of `shape`, and its mask
  (None where no mask applies)."""
  task = config.sampling.task
  if task == "inpaint":
    mask = _build_mask(config, shape)
    observation = conditioning.MaskObservation(mask)
  elif task == "colorize":
    mask, observation = None, conditioning.GrayObservation()
  elif task == "super_resolution":
    mask, observation = None, conditioning.AveragePoolObservation(config.sampling.sr_factor)
  else:
    raise UserError(f"sampling.task={task!r} is not an inverse problem; choose one of "
                     "['colorize', 'inpaint', 'super_resolution'].")
  if len(shape) != 3 and task != "inpaint":
    raise UserError(f"sampling.task={task!r} needs images; the data are {shape[0]}-D points "
                     "(use task=inpaint with sampling.observed_coords).")
  conditioning.check_observation_shape(observation, shape)
  return observation, mask


def check_inverse_config(config) -> None:
  """Rejects unsupported settings before any work: unknown names, observation noise or the
  adaptive ODE with a method that cannot take them, sample counts below one."""
  s = config.sampling
  conditioning.check_inverse_settings(s.inverse_method, s.method, s.observation_noise)
  if s.inputs_from not in INPUT_SOURCES:
    raise UserError(f"Unknown sampling.inputs_from {s.inputs_from!r}; choose one of "
                     f"{list(INPUT_SOURCES)}.")
  if s.num_inputs < 1 or s.samples_per_input < 1:
    raise UserError(f"sampling.num_inputs={s.num_inputs} and sampling.samples_per_input="
                     f"{s.samples_per_input} must both be >= 1.")


def _read_file_inputs(path: str) -> np.ndarray:
  path = pathlib.Path(path)
  if not path.is_file():
    raise UserError(f"sampling.inputs_path={str(path)!r} is not a file; give an .npz or PNG.")
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as arrays:
      return np.asarray(arrays["inputs"] if "inputs" in arrays else arrays[arrays.files[0]])
  return np.asarray(Image.open(path))[None]


def _as_model_inputs(raw: np.ndarray, config, shape: tuple) -> np.ndarray:
  """uint8 images -> model space (as the data); float arrays are taken as model space."""
  if len(shape) == 3 and raw.ndim == 3 and shape[-1] == 1:
    raw = raw[..., None]
  if raw.shape[1:] != tuple(shape):
    raise UserError(f"sampling.inputs_path holds inputs of shape {raw.shape[1:]}; the model "
                     f"needs {tuple(shape)} (e.g. uint8 (N, H, W, C) images).")
  if raw.dtype == np.uint8:
    return data_sources.preprocess(raw, is_image=True, centered=config.data.centered,
                                   uniform_dequantization=False)
  return raw.astype(np.float32)


def load_inputs(config, shape: tuple) -> np.ndarray:
  """The first sampling.num_inputs inputs (K, *shape) in model space, from the test split or
  sampling.inputs_path."""
  s, info = config.sampling, build.data_info(config)
  if s.inputs_from == "file":
    inputs = _as_model_inputs(_read_file_inputs(s.inputs_path), config, shape)
  else:
    source = build.load_split(config, "test")
    count = min(s.num_inputs, len(source))
    inputs = data_sources.preprocess(source[np.arange(count)], is_image=info.is_image,
                                     centered=config.data.centered, uniform_dequantization=False)
  if len(inputs) < s.num_inputs:
    raise UserError(f"sampling.num_inputs={s.num_inputs}, but the inputs hold only "
                     f"{len(inputs)}; lower sampling.num_inputs.")
  return inputs[:s.num_inputs]


def observe(config, observation, inputs: np.ndarray) -> np.ndarray:
  """y = A x + sigma_y A A^+ z (K, ...) of inputs (K, ...), z from the per-input keys above."""
  y = observation.observe(jnp.asarray(inputs))
  sigma = config.sampling.observation_noise
  if sigma == 0:
    return np.asarray(y)
  base = jax.random.fold_in(jax.random.key(config.seed), OBSERVATION_STREAM)
  keys = samplers.sample_keys(base, jnp.arange(len(inputs)))
  z = jax.vmap(lambda k: jax.random.normal(k, y.shape[1:], y.dtype))(keys)
  return np.asarray(y + sigma * observation.observe(observation.lift(z)))


def make_inverse_sample_fn(config, sde, score_model, observation, parallel: DataParallel):
  """Jitted (params, indices (B,) int32, y (B, ...)) -> (samples (B, ...), nfe (B,))."""
  s = config.sampling
  method = conditioning.get_inverse_method(s.inverse_method)
  options = build.solver_options(config, sde)
  times = samplers.make_grid(sde, s.grid, s.num_steps, s.eps, s.grid_rho)
  shape, base_key = build.data_info(config).shape, build.stream_key(config, "sample")

  def sample_fn(params, idx, y):
    keys = samplers.sample_keys(base_key, idx)
    x, nfe = method(s.method, build.model_fns(sde, score_model, params), times, keys, shape,
                    observation, y, s.repaint_resamples, noise_std=s.observation_noise,
                    scale=s.dps_scale, **options)
    return x, jnp.broadcast_to(jnp.asarray(nfe, jnp.int32), idx.shape)

  return jax.jit(sample_fn, in_shardings=(parallel.replicated, parallel.batch, parallel.batch),
                 out_shardings=(parallel.batch, parallel.batch))


def _draw_png(config, path, arrays: dict, observation) -> None:
  """Rows [observation | samples | ground truth] (images), or the samples beside the inputs."""
  x, inputs, y = arrays["samples"], arrays["inputs"], arrays["observations"]
  if len(x.shape) != 5:  # points (K, S, D)
    outputs.scatter_png(path, x.reshape(-1, x.shape[-1]), inputs)
    return
  shown = np.asarray(observation.lift(jnp.asarray(y)))
  rows = np.concatenate([shown[:, None], x, inputs[:, None]], axis=1)[:16]
  outputs.grid_png(path, rows.reshape(-1, *x.shape[2:]), config.data.centered, cols=rows.shape[1],
                   tile=64)


def sample_inverse(config, workdir):
  """Conditional samples (K, S, ...) for sampling.task; writes WORKDIR/samples/
  TASK_INVERSEMETHOD_METHOD_STEPS.npz, .png and .json (outputs.write_samples)."""
  build.check_config(config)
  check_inverse_config(config)
  workdir, s = pathlib.Path(workdir), config.sampling
  shape = build.data_info(config).shape
  observation, mask = build_observation(config, shape)
  inputs = load_inputs(config, shape)
  y = observe(config, observation, inputs)
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  sample_fn = make_inverse_sample_fn(config, sde, score_model, observation, parallel)
  per_input, start = s.samples_per_input, time.perf_counter()
  x, nfe = map_global_batches(lambda idx, obs: sample_fn(params, idx, obs), len(inputs) * per_input,
                              s.batch_size, parallel,
                              lambda idx: (idx.astype(np.int32), y[np.minimum(idx // per_input, len(y) - 1)]),
                              s.task)
  arrays = dict(samples=x.reshape(len(inputs), per_input, *shape), observations=y, inputs=inputs,
                nfe=nfe, **({} if mask is None else {"masks": mask}))
  if jax.process_index() == 0:
    path = outputs.write_samples(config, workdir, arrays,
                                 lambda png: _draw_png(config, png, arrays, observation))
    print(f"Wrote {len(x)} {s.task} samples ({len(inputs)} inputs x {per_input}) to "
          f"{path} (and .png, .json) ({time.perf_counter() - start:.1f} s, "
          f"{s.method} + {s.inverse_method}, NFE {int(nfe.max())}).")
  return arrays
