"""The observation condition of linear inverse problems (sampling.task inpaint | colorize |
super_resolution; settings in sampling.inverse): observations y = A x + sigma_y n of inputs from
the test split or a file, sigma_y = sampling.inverse.observation_noise (0: noise-free).

The observation noise of input k is n_k = A A^+ z_k, z_k ~ N(0, I) in y's shape drawn from
fold_in(fold_in(key(seed), OBSERVATION_STREAM), k): white in y-space (zero where a mask hides a
pixel) and the same whatever the batch size.

Sample j of input k has the global index k * samples_per_input + j and the sampling stream's key
folded with it, so samples do not depend on batch size or device count. workflows.sample writes
WORKDIR/samples/TASK_INVERSEMETHOD_METHOD_STEPS.npz (samples (K, S, ...), observations (K, ...) =
y, inputs (K, ...), masks where a mask applies, nfe), .png: rows [observation | samples | ground
truth] (images) or a scatter (points), and .json: the sampling settings (outputs.write_samples).
"""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import conditioning
import data_sources
import samplers
from configs.errors import UserError, config_keys
from workflows import build, outputs

INPUT_SOURCES = ("test", "file")
OBSERVATION_STREAM = 0x0B5E_0001  # apart from workflows.build.RNG_STREAMS (0, 1, 2)


# Arguments of conditioning.make_mask and the observations -> their sampling.inverse keys.
OBSERVATION_KEYS = {"name": "mask", "box_size": "mask_box_size", "fraction": "mask_fraction",
                    "path": "mask_path", "observed_coords": "observed_coords",
                    "factor": "sr_factor"}


def _build_mask(config, shape: tuple) -> np.ndarray:
  s = config.sampling.inverse
  return conditioning.make_mask(
      s.mask, shape, box_size=s.mask_box_size, box_top=s.mask_box_top, box_left=s.mask_box_left,
      fraction=s.mask_fraction, seed=s.mask_seed, path=s.mask_path,
      observed_coords=tuple(s.observed_coords))


def build_observation(config, shape: tuple):
  """The linear observation of config.sampling.task for examples of `shape`, and its mask
  (None where no mask applies)."""
  with config_keys(lambda a: OBSERVATION_KEYS.get(a) and f"sampling.inverse.{OBSERVATION_KEYS[a]}"):
    return _build_observation(config, shape)


def _build_observation(config, shape: tuple):
  task = config.sampling.task
  if task == "inpaint":
    mask = _build_mask(config, shape)
    observation = conditioning.MaskObservation(mask)
  elif task == "colorize":
    mask, observation = None, conditioning.GrayObservation()
  elif task == "super_resolution":
    mask = None
    observation = conditioning.AveragePoolObservation(config.sampling.inverse.sr_factor)
  else:
    raise UserError(f"sampling.task={task!r} is not an inverse problem; choose one of "
                     "['colorize', 'inpaint', 'super_resolution'].")
  if len(shape) != 3 and task != "inpaint":
    raise UserError(f"sampling.task={task!r} needs images; the data are {shape[0]}-D points "
                     "(use task=inpaint with sampling.inverse.observed_coords).")
  conditioning.check_observation_shape(observation, shape)
  return observation, mask


INVERSE_METHODS = ("replacement", "pigdm", "dps")  # conditioning.CONDITIONS on observations


def check_inverse_config(config) -> None:
  """Rejects unknown methods and input sources, and sample counts below one, before any work."""
  i = config.sampling.inverse
  if i.method not in INVERSE_METHODS:
    raise UserError(f"Unknown sampling.inverse.method {i.method!r}; choose one of "
                    f"{list(INVERSE_METHODS)} (RePaint: replacement with sampling.method=repaint).")
  if i.inputs_from not in INPUT_SOURCES:
    raise UserError(f"Unknown sampling.inverse.inputs_from {i.inputs_from!r}; choose one of "
                     f"{list(INPUT_SOURCES)}.")
  if i.num_inputs < 1 or i.samples_per_input < 1:
    raise UserError(f"sampling.inverse.num_inputs={i.num_inputs} and "
                    f"sampling.inverse.samples_per_input={i.samples_per_input} must both be >= 1.")


def _read_file_inputs(path: str) -> np.ndarray:
  path = pathlib.Path(path)
  if not path.is_file():
    raise UserError(f"sampling.inverse.inputs_path={str(path)!r} is not a file; give an .npz or PNG.")
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as arrays:
      return np.asarray(arrays["inputs"] if "inputs" in arrays else arrays[arrays.files[0]])
  return np.asarray(Image.open(path))[None]


def _as_model_inputs(raw: np.ndarray, config, shape: tuple) -> np.ndarray:
  """uint8 images -> model space (as the data); float arrays are taken as model space."""
  if len(shape) == 3 and raw.ndim == 3 and shape[-1] == 1:
    raw = raw[..., None]
  if raw.shape[1:] != tuple(shape):
    raise UserError(f"sampling.inverse.inputs_path holds inputs of shape {raw.shape[1:]}; the model "
                     f"needs {tuple(shape)} (e.g. uint8 (N, H, W, C) images).")
  if raw.dtype == np.uint8:
    return data_sources.preprocess(raw, is_image=True, centered=config.data.centered,
                                   uniform_dequantization=False)
  return raw.astype(np.float32)


def load_inputs(config, shape: tuple) -> np.ndarray:
  """The first sampling.inverse.num_inputs inputs (K, *shape) in model space, from the test
  split or sampling.inverse.inputs_path."""
  s = config.sampling.inverse
  if s.inputs_from == "file":
    inputs = _as_model_inputs(_read_file_inputs(s.inputs_path), config, shape)
  else:
    inputs = build.model_space_examples(config, "test", s.num_inputs)
  if len(inputs) < s.num_inputs:
    raise UserError(f"sampling.inverse.num_inputs={s.num_inputs}, but the inputs hold only "
                     f"{len(inputs)}; lower sampling.inverse.num_inputs.")
  return inputs[:s.num_inputs]


def observe(config, observation, inputs: np.ndarray) -> np.ndarray:
  """y = A x + sigma_y A A^+ z (K, ...) of inputs (K, ...), z from the per-input keys above."""
  y = observation.observe(jnp.asarray(inputs))
  sigma = config.sampling.inverse.observation_noise
  if sigma == 0:
    return np.asarray(y)
  base = jax.random.fold_in(jax.random.key(config.seed), OBSERVATION_STREAM)
  keys = samplers.sample_keys(base, jnp.arange(len(inputs)))
  z = jax.vmap(lambda k: jax.random.normal(k, y.shape[1:], y.dtype))(keys)
  return np.asarray(y + sigma * observation.observe(observation.lift(z)))


def observation_condition(config, observation):
  """conditioning.Condition of sampling.inverse.method for `observation`."""
  with build.section_keys("sampling.inverse"):
    return conditioning.build_condition(config.sampling.inverse.method,
                                        {"observation": observation}, config.sampling.inverse)


def draw_png(config, path, arrays: dict, observation) -> None:
  """Rows [observation | samples | ground truth] (images), or the samples beside the inputs."""
  x, inputs, y = arrays["samples"], arrays["inputs"], arrays["observations"]
  if len(x.shape) != 5:  # points (K, S, D)
    outputs.scatter_png(path, x.reshape(-1, x.shape[-1]), inputs)
    return
  shown = np.asarray(observation.lift(jnp.asarray(y)))
  rows = np.concatenate([shown[:, None], x, inputs[:, None]], axis=1)[:16]
  outputs.grid_png(path, rows.reshape(-1, *x.shape[2:]), config.data.centered, cols=rows.shape[1],
                   tile=64)
