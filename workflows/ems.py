"""--mode=ems: DPM-Solver-v3's empirical model statistics for the workdir's model, written to
workdir/ems/NAME.npz (lambdas, l, s, b; samplers.ems). Sample with them by
--config.sampling.method=dpm_solver_v3 --config.sampling.ems=NAME.

The nodes are ems.num_nodes + 1 half-log-SNRs uniform from lambda(T) to lambda(sampling.eps);
the data are the first ems.num_data training examples, each with its own noise and Hutchinson
probe from the "ems" stream, shared by every node. A first pass estimates l at every node, a
second one s and b (with l's finite-difference slope). Both go in global batches of
ems.batch_size over all devices. The state is saved every ems.save_every nodes and on SIGINT /
SIGTERM (NAME.state.npz); rerunning the command resumes it to the same result. An existing
statistics file is never overwritten.
"""
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

import fileio
import samplers
from configs.errors import UserError
from parallel import DataParallel
from samplers import ems
from training import interrupt
from workflows import build
from workflows.batches import map_global_batches

EMS_DIR = "ems"  # under the workdir


def ems_path(config, workdir) -> pathlib.Path:
  c = config.ems
  name = c.name or f"{config.sampling.eps:g}_{c.num_nodes}_{c.num_data}"
  return pathlib.Path(workdir) / EMS_DIR / f"{name}.npz"


class EMSProblem:
  """The model, data, draws and jitted per-node terms of one EMS estimate."""

  def __init__(self, config, workdir):
    c, parallel = config.ems, DataParallel.over_all_devices()
    self.config, self.parallel = config, parallel
    sde = build.build_sde(config)
    score_model = build.build_score_model(config, sde)
    self.params = build.load_score_params(config, workdir, score_model, parallel.replicated)
    self.data = build.model_space_examples(config, "train", c.num_data)
    if len(self.data) < c.num_data:
      raise UserError(f"ems.num_data={c.num_data}, but the training split holds "
                      f"{len(self.data)} examples; lower ems.num_data.")
    self.nodes = ems.lambda_nodes(sde, config.sampling.eps, c.num_nodes)
    base = build.stream_key(config, "ems")
    fns_of = lambda params: build.model_fns(sde, score_model, params)

    def draws(indices, shape):
      """Noise z and a Rademacher probe v (B, ...) of each example's own key."""
      keys = samplers.sample_keys(base, indices)
      z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), shape))(keys)
      v = jax.vmap(lambda k: jax.random.rademacher(jax.random.fold_in(k, 1), shape, jnp.float32))(keys)
      return z, v

    def trace(params, indices, x0, lam):
      z, v = draws(indices, x0.shape[1:])
      return ems.trace_terms(fns_of(params), x0, z, v, lam)

    def regression(params, indices, x0, lam, l, dl):
      return ems.regression_terms(fns_of(params), x0, draws(indices, x0.shape[1:])[0], lam, l, dl)

    rep, batch = parallel.replicated, parallel.batch
    self._trace = jax.jit(trace, in_shardings=(rep, batch, batch, rep), out_shardings=batch)
    self._regression = jax.jit(regression, in_shardings=(rep, batch, batch, rep, rep, rep),
                               out_shardings=(batch, batch))

  def _over_data(self, fn):
    rows = lambda idx: (idx.astype(np.int32), self.data[np.minimum(idx, len(self.data) - 1)])
    return map_global_batches(lambda idx, x0: fn(self.params, idx, x0), len(self.data),
                              self.config.ems.batch_size, self.parallel, rows, "data",
                              progress=False, batch_key="ems.batch_size")

  def l_at(self, k: int) -> float:
    """l at node k."""
    lam = jnp.float32(self.nodes[k])
    return float(np.mean(self._over_data(lambda p, i, x: self._trace(p, i, x, lam)), dtype=np.float64))

  def sb_at(self, k: int, l: float, dl: float):
    """(s, b (...)) at node k, given l and its slope there."""
    args = tuple(jnp.float32(v) for v in (self.nodes[k], l, dl))
    f, df = self._over_data(lambda p, i, x: self._regression(p, i, x, *args))
    return ems.fit_sb(f, df)


def _load_state(path: pathlib.Path, problem: EMSProblem) -> dict:
  """The saved estimate, or an empty one: l, s (N,), b (N, ...), l_done, sb_done."""
  n = len(problem.nodes)
  state = dict(l=np.zeros(n), s=np.zeros(n), b=np.zeros((n, *problem.data.shape[1:])),
               l_done=0, sb_done=0, lambdas=problem.nodes, num_data=len(problem.data))
  if path.exists():
    with np.load(path) as saved:
      same = (saved["lambdas"].shape == problem.nodes.shape
              and np.array_equal(saved["lambdas"], problem.nodes)
              and int(saved["num_data"]) == len(problem.data))
      if not same:
        raise UserError(f"{path} holds a run on other nodes or data; rerun with its "
                        "ems.num_nodes, sampling.eps and ems.num_data, or delete it.")
      state = {k: saved[k] for k in state}
  return state


def estimate_ems(config, workdir) -> dict:
  """--mode=ems: writes workdir/ems/NAME.npz (module docstring) and returns its arrays."""
  build.check_config(config)
  path, c = ems_path(config, workdir), config.ems
  if path.exists():
    raise UserError(f"{path} exists; set --config.ems.name=... to estimate others (statistics "
                    "are never overwritten).")
  start = time.perf_counter()
  problem = EMSProblem(config, workdir)
  state_path = path.with_suffix(".state.npz")
  state, n = _load_state(state_path, problem), len(problem.nodes)

  with interrupt.stop_requests() as request:

    def save_or_stop(done: int, stage: str):
      """Saves every ems.save_every nodes and on a stop request, then stops if requested."""
      stop = bool(request)
      if (done % c.save_every == 0 or stop) and jax.process_index() == 0:
        fileio.write_npz_atomic(state_path, **state)
      if stop:
        request.raise_if_set(f"at node {done} of {n} (pass {stage} of 2); saved {state_path}")

    for k in tqdm.trange(int(state["l_done"]), n, desc="ems: l", disable=jax.process_index() != 0):
      state["l"][k], state["l_done"] = problem.l_at(k), k + 1
      save_or_stop(k + 1, "1")
    slopes = ems.slopes(problem.nodes, state["l"])
    for k in tqdm.trange(int(state["sb_done"]), n, desc="ems: s, b",
                         disable=jax.process_index() != 0):
      state["s"][k], state["b"][k] = problem.sb_at(k, state["l"][k], slopes[k])
      state["sb_done"] = k + 1
      save_or_stop(k + 1, "2")
  arrays = dict(lambdas=problem.nodes, l=state["l"], s=state["s"], b=state["b"])
  if jax.process_index() == 0:
    fileio.write_npz_atomic(path, **arrays)
    state_path.unlink(missing_ok=True)
    print(f"Wrote {path}: {n} nodes from {c.num_data} examples in "
          f"{time.perf_counter() - start:.1f} s. Sample with "
          f"--config.sampling.method=dpm_solver_v3 --config.sampling.ems={path.stem}")
  return arrays
