"""--mode=encode: data to latents at T along the probability-flow ODE, and back.

The deterministic grid solver of config.sampling runs up its grid reversed (eps to T) from the
data: the first sampling.inverse.num_inputs examples of the test split, or of
sampling.inverse.inputs_path (sampling.inverse.inputs_from=file), as for inverse problems. Its
latents are decoded again down the same grid, and workdir/latents/NAME.npz (NAME:
encode_<method>_<num_steps>, never overwritten) holds `inputs`, `latents`, `reconstructions`,
`error` (per example: the root mean square of reconstruction - input) and `nfe` (of one way).

`--mode=sample --config.sampling.latents_from=FILE` decodes a latents file instead of prior
draws; with sampling.interpolate=K it decodes K points of the spherical interpolation (slerp)
between latents 2i and 2i + 1 of the file, for every pair.
"""
import pathlib

import jax
import numpy as np

import fileio
import samplers
from configs.errors import MissingFileError, UserError
from parallel import DataParallel
from samplers import solvers
from workflows import build, inverse, outputs
from workflows.batches import map_global_batches

LATENTS_DIR = "latents"  # under the workdir


def slerp(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """Spherical interpolation (K, ...) from a to b (...) at weights (K,) in [0, 1]: the great
  circle through a and b, norms interpolated linearly (Shoemake 1985)."""
  flat_a, flat_b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
  norm_a, norm_b = np.linalg.norm(flat_a), np.linalg.norm(flat_b)
  cos = np.clip(flat_a @ flat_b / (norm_a * norm_b), -1.0, 1.0)
  angle = np.arccos(cos)
  w = np.asarray(weights, np.float64)[:, None]
  if angle < 1e-6:
    points = (1 - w) * flat_a + w * flat_b
  else:
    unit_a, unit_b = flat_a / norm_a, flat_b / norm_b
    direction = (np.sin((1 - w) * angle) * unit_a + np.sin(w * angle) * unit_b) / np.sin(angle)
    points = direction * ((1 - w) * norm_a + w * norm_b)
  return points.reshape(len(w), *a.shape).astype(a.dtype)


def load_latents(config, shape: tuple) -> np.ndarray:
  """The latents (N, *shape) to decode: sampling.latents_from's `latents`, or with
  sampling.interpolate = K, K slerp points between each pair of them ((N // 2) K, *shape)."""
  s = config.sampling
  path = pathlib.Path(s.latents_from)
  if not path.is_file():
    raise MissingFileError(f"sampling.latents_from={s.latents_from!r} is not a file; set it to "
                           "a latents .npz of --mode=encode.")
  with np.load(path) as f:
    if "latents" not in f.files:
      raise UserError(f"{path} holds no `latents` array; set sampling.latents_from to a file of "
                      "--mode=encode.")
    latents = np.asarray(f["latents"], np.float32)
  if latents.shape[1:] != tuple(shape):
    raise UserError(f"The latents in {path} are shaped {latents.shape[1:]}, the model's data "
                    f"{tuple(shape)}: encode with this model's config.")
  if s.interpolate < 0 or s.interpolate == 1:
    raise UserError(f"sampling.interpolate={s.interpolate} must be 0 (no interpolation) or at "
                    "least 2 (points per pair, ends included).")
  if not s.interpolate:
    return latents
  if len(latents) < 2:
    raise UserError(f"sampling.interpolate needs pairs of latents; {path} holds {len(latents)}.")
  weights = np.linspace(0.0, 1.0, s.interpolate)
  return np.concatenate([slerp(latents[i], latents[i + 1], weights)
                         for i in range(0, len(latents) - 1, 2)])


def transport_fn(config, sde, score_model, parallel, upward: bool):
  """Jitted (params, indices (B,), x (B, ...)) -> (x at the other end (B, ...), nfe (B,)): the
  deterministic solver of config.sampling from x, up its grid reversed (eps to T) if `upward`,
  else down it, without the final denoising step."""
  s = config.sampling
  solver = samplers.get_solver(s.method)
  options = solvers.all_options(s.method, s) | {"denoise": False}
  if not (solver.uses_grid and solver.deterministic(options)):
    takers = sorted(name for name, other in samplers.SOLVERS.items()
                    if other.uses_grid and other.deterministic(solvers.all_options(name, {})))
    raise UserError(f"Encoding runs a deterministic grid solver up its grid; "
                    f"sampling.method={s.method!r} with these options is not one: use one of "
                    f"{takers} (ddim with eta=0, heun / euler with s_churn=0).")
  times = build.sampling_times(config, sde)
  times = times[::-1] if upward else times
  base_key = build.stream_key(config, "sample")

  def run(params, indices, x):
    fns = build.model_fns(sde, score_model, params).with_start(lambda keys, shape: x)
    with build.sampling_keys():
      out, nfe = solver.sample(fns, times, samplers.sample_keys(base_key, indices), x.shape[1:],
                               **options)
    return out, jax.numpy.broadcast_to(jax.numpy.asarray(nfe, jax.numpy.int32), x.shape[:1])

  return jax.jit(run, in_shardings=(parallel.replicated, parallel.batch, parallel.batch),
                 out_shardings=(parallel.batch, parallel.batch))


def transport(fn, params, x: np.ndarray, batch: int, parallel, desc: str):
  """fn (transport_fn) over the rows of x (N, ...) in global batches: (N, ...), nfe (N,)."""
  rows = lambda idx: (idx.astype(np.int32), x[np.minimum(idx, len(x) - 1)])
  return map_global_batches(lambda idx, v: fn(params, idx, v), len(x), batch, parallel, rows,
                            desc, batch_key="sampling.batch_size")


def encode(config, workdir) -> dict:
  """--mode=encode: writes workdir/latents/NAME.npz (module docstring) and returns its arrays."""
  build.check_config(config)
  config = build.with_workdir_files(config, workdir)
  s, parallel = config.sampling, DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  up = transport_fn(config, sde, score_model, parallel, upward=True)
  down = transport_fn(config, sde, score_model, parallel, upward=False)
  inputs = inverse.load_inputs(config, build.data_info(config).shape)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  latents, nfe = transport(up, params, inputs, s.batch_size, parallel, "encode")
  reconstructions, _ = transport(down, params, latents, s.batch_size, parallel, "decode")
  error = np.sqrt(np.mean(np.square(reconstructions - inputs).reshape(len(inputs), -1), axis=1))
  arrays = dict(inputs=inputs, latents=latents, reconstructions=reconstructions, error=error,
                nfe=nfe)
  if jax.process_index() == 0:
    stem = outputs.claim_stem(pathlib.Path(workdir) / LATENTS_DIR,
                              f"encode_{s.method}_{s.num_steps}", s.to_dict())
    path = outputs.output_file(stem, ".npz")
    fileio.write_npz_atomic(path, **arrays)
    print(f"Wrote {len(latents)} latents to {path} (NFE {int(nfe.max())} each way; "
          f"reconstruction RMS error mean {error.mean():.3g}, max {error.max():.3g}).")
  return arrays
