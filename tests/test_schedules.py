"""Time schedules: AYS's and the ramp's closed forms, GITS's dynamic programming against brute
force, GITS and learned schedules beating their initial grid on held-out draws of the exact
mixture, a learned schedule resumed after an interruption, and the file grid."""
import contextlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samplers
import workflows
from configs import load_config
from oracles import gmm_fns
from samplers import schedules
from sde_lib import VPSDE
from training import interrupt
from workflows import build, schedule as schedule_mode

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

SPEC = "configs/gmm_analytic.py:vpsde"
SMALL = {"schedule.num_samples": 64, "schedule.fine_steps": 24, "schedule.teacher_substeps": 2,
         "sampling.method": "euler", "sampling.num_steps": 5, "sampling.grid": "uniform"}


def test_cheapest_path_is_the_best_of_all_schedules():
  rng = np.random.default_rng(0)
  m, points = 9, 4
  cost = np.where(np.arange(m)[None] > np.arange(m)[:, None], rng.uniform(size=(m, m)), np.inf)
  path = schedules.cheapest_path(cost, points)
  total = lambda p: sum(cost[a, b] for a, b in zip(p[:-1], p[1:]))
  best = min(((0, *inner, m - 1) for inner in itertools.combinations(range(1, m - 1), points - 2)),
             key=total)
  assert tuple(path) == best and np.isclose(total(path), total(best))


def test_zero_logits_give_the_edm_grid_and_ramp_logits_invert_ramp_times():
  sde = VPSDE()
  ramp = schedules.ramp_times(sde, jnp.zeros(7), 1e-3, 7.0)
  np.testing.assert_allclose(ramp, samplers.make_grid(sde, "edm", 8, 1e-3), rtol=1e-5)
  times = samplers.make_grid(sde, "logsnr", 8, 1e-3)
  np.testing.assert_allclose(schedules.ramp_times(sde, schedules.ramp_logits(sde, times, 1e-3, 7.0),
                                                  1e-3, 7.0), times, rtol=1e-4)


# the learned one in eval.features' distance (the points themselves here; the interrupted run
# below fits in l2)
@pytest.mark.parametrize("method,extra", [
    ("gits", {}), ("learned", {"schedule.iterations": 40, "schedule.loss": "features"})])
def test_schedule_beats_its_initial_grid_on_held_out_draws(tmp_path, method, extra):
  config = load_config(SPEC, {**SMALL, "schedule.method": method, **extra})
  record = schedule_mode.make_schedule(config, tmp_path)
  assert record["loss"] < 0.5 * record["initial_loss"], record
  assert record["distance"] == config.schedule.loss
  times = np.asarray(record["times"])
  assert len(times) == 5 and times[0] == 1.0 and np.isclose(times[-1], 1e-3)
  assert np.all(np.diff(times) < 0) and record["nfe"] == 5
  with pytest.raises(ValueError, match="exists; set --config.schedule.name"):
    schedule_mode.make_schedule(config, tmp_path)  # never overwritten


def test_the_file_grid_samples_on_the_schedule_and_checks_its_length(tmp_path):
  config = load_config(SPEC, SMALL)
  times = np.asarray([1.0, 0.3, 0.05, 0.01, 1e-3])
  schedules.write_schedule(tmp_path / "schedules" / "mine.json", times, solver="euler")
  model = workflows.load(config, tmp_path)
  on_file = model.sample(16, grid="file", grid_path="mine")  # NAME: the workdir's schedules/
  keys = samplers.sample_keys(build.stream_key(config, "sample"), jnp.arange(16))
  direct, nfe = samplers.get_solver("euler").sample(model.model_fns(), jnp.asarray(times), keys,
                                                    (2,))
  np.testing.assert_allclose(on_file, direct, rtol=1e-4, atol=5e-5)  # jitted or not
  assert nfe == 5
  with pytest.raises(ValueError, match=r"has 5 times; set sampling.num_steps=5"):
    model.sample(16, grid="file", grid_path="mine", num_steps=6)
  with pytest.raises(FileNotFoundError, match=r"No schedule file .*theirs.json.* Set "
                     r"--config.sampling.grid_path="):
    model.sample(16, grid="file", grid_path="theirs")


class StopAfter:
  """A StopRequest that is set once it has been asked `checks` times."""

  def __init__(self, checks: int):
    self.checks, self.signum = checks, None

  def __bool__(self):
    self.checks -= 1
    if self.checks < 0:
      self.signum = 2
    return self.signum is not None

  raise_if_set = interrupt.StopRequest.raise_if_set


def test_an_interrupted_learned_schedule_resumes_to_the_same_times(tmp_path, monkeypatch):
  settings = {**SMALL, "schedule.method": "learned", "schedule.iterations": 8,
              "schedule.save_every": 3}
  whole = schedule_mode.make_schedule(load_config(SPEC, {**settings, "schedule.name": "whole"}),
                                      tmp_path)
  config = load_config(SPEC, {**settings, "schedule.name": "cut"})
  with monkeypatch.context() as patch:
    patch.setattr(interrupt, "stop_requests", contextlib.contextmanager(lambda: (yield StopAfter(5))))
    with pytest.raises(interrupt.Interrupted, match="at iteration"):
      schedule_mode.make_schedule(config, tmp_path)
  assert (tmp_path / "schedules" / "cut.state.npz").exists()
  resumed = schedule_mode.make_schedule(config, tmp_path)
  np.testing.assert_array_equal(resumed["times"], whole["times"])
  assert not (tmp_path / "schedules" / "cut.state.npz").exists()


def test_a_stochastic_teacher_or_an_unknown_method_is_one_line(tmp_path):
  with pytest.raises(ValueError, match=r"^schedule.teacher='dpm_solver_sde_2m' .* not deterministic"):
    schedule_mode.make_schedule(load_config(SPEC, {**SMALL, "schedule.teacher": "dpm_solver_sde_2m"}),
                                tmp_path)
  with pytest.raises(ValueError, match=r"^Unknown schedule.method 'ld3'; choose one of"):
    schedule_mode.make_schedule(load_config(SPEC, {**SMALL, "schedule.method": "ld3"}), tmp_path)
  with pytest.raises(ValueError, match=r"^Unknown schedule.loss 'lpips'; choose one of"):
    schedule_mode.make_schedule(load_config(SPEC, {**SMALL, "schedule.loss": "lpips"}), tmp_path)


def test_the_feature_distance_embeds_as_the_eval_features_do():
  """schedule.loss=features differentiates through eval.features' network: its jax embedding
  equals the features --mode=eval computes (the digits CNN), and has gradients in x."""
  config = load_config("configs/digits.py:vpsde", {"eval.features": "digits"})
  fn, embed = build.feature_network(config, "symmetric")
  x = np.asarray(jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), minval=-1.0, maxval=1.0))
  np.testing.assert_allclose(embed(jnp.asarray(x)), fn(x)[0], rtol=1e-5, atol=1e-5)
  grad = jax.grad(lambda v: jnp.sum(embed(v) ** 2))(jnp.asarray(x))
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


DETERMINISTIC = sorted(name for name, solver in samplers.SOLVERS.items()
                       if solver.uses_grid and solver.deterministic(
                           samplers.solvers.all_options(name, {})))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_every_deterministic_solver_has_finite_schedule_gradients(name, compile_without_llvm_optimisation):
  """The learned schedule's loss differentiates through each solver (DEIS's Lagrange basis had
  0 / 0 in masked factors: NaN gradients)."""
  sde = VPSDE()
  fns = gmm_fns(sde)
  keys = samplers.sample_keys(jax.random.key(0), jnp.arange(8))
  loss = lambda v: schedules.matching_loss(samplers.get_solver(name).sample, fns, sde, v, keys, (2,),
                                           jnp.zeros((8, 2)), 1e-3, 7.0)
  grad = jax.jit(jax.grad(loss))(jnp.zeros(4))
  assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0, grad
