"""The workflows main.py runs, end to end on tiny runs, and clear errors for bad input (the
command line's: tests/test_cli_errors.py)."""
import jax
import numpy as np
import pytest

import models
import samplers
from configs import load_config
from oracles import energy_distance
from workflows import build, sample as sample_mode, train as train_mode
from workflows.likelihood import likelihood
from workflows.train import build_trainer


@pytest.mark.parametrize("key,value,choices", [
    ("sde.name", "ito", "vesde"),
    ("model.name", "unet", "ncsnpp" if "ncsnpp" in models.NETWORKS else "mlp"),
    ("data.dataset", "imagenet", "swiss_roll"),
])
def test_unknown_names_list_the_choices(key, value, choices):
  config = load_config("configs/toy.py:swiss_roll,vpsde", {key: value})
  with pytest.raises(ValueError, match=choices):
    build.data_info(config)
    build.build_score_model(config, build.build_sde(config))


@pytest.mark.parametrize("getter,name,choice", [
    (samplers.get_predictor, "heun", "reverse_diffusion"),
    (samplers.get_corrector, "hmc", "langevin"),
    (samplers.get_ode_solver, "rk4", "dopri5"),
    (samplers.get_trace_estimator, "skilling", "rademacher"),
])
def test_unknown_sampler_names_list_the_choices(getter, name, choice):
  with pytest.raises(ValueError, match=choice):
    getter(name)


def test_unknown_sampling_method_lists_the_choices(tmp_path):
  config = load_config("configs/gmm_analytic.py:vpsde", {"sampling.method": "plms"})
  with pytest.raises(ValueError, match="'ddim'.*'ode', 'pc'"):
    sample_mode(config, tmp_path)
  config = load_config("configs/gmm_analytic.py:vpsde", {"sampling.grid": "cosine"})
  with pytest.raises(ValueError, match="Unknown grid 'cosine'.*'edm'"):
    sample_mode(config, tmp_path)


@pytest.mark.parametrize("old,new", [("model.sigma_max", "sde.sigma_max"),
                                     ("model.ema_rate", "training.ema_rate"),
                                     ("training.sde", "sde.name"),
                                     ("sampling.class_label", "sampling.guidance.class_label"),
                                     ("sampling.guidance_scale", "sampling.guidance.scale"),
                                     ("sampling.inverse_method", "sampling.inverse.method"),
                                     ("sampling.dps_scale", "sampling.inverse.scale"),
                                     ("sampling.mask", "sampling.inverse.mask"),
                                     ("sampling.num_inputs", "sampling.inverse.num_inputs")])
def test_moved_config_keys_name_the_new_key(old, new):
  with pytest.raises(KeyError, match=f"'{old}'.*moved to '{new}'"):
    load_config("configs/toy.py:swiss_roll,vpsde", {old: 1.0})


@pytest.mark.parametrize("task,method", [("class_conditional", "classifier"), ("cfg", "cfg")])
def test_old_guidance_tasks_name_the_guidance_method(tmp_path, task, method):
  config = load_config("configs/gmm_analytic.py:vpsde", {"sampling.task": task})
  with pytest.raises(ValueError, match=f"--config.sampling.guidance.method={method} "):
    sample_mode(config, tmp_path)
  assert not (tmp_path / "samples").exists()


@pytest.mark.parametrize("overrides,takers", [
    ({"sampling.eta": 0.5}, "ddim"),  # the analytic config samples with dpm_solver_2m
    ({"sampling.method": "ddim", "sampling.corrector": "langevin"}, "pc, repaint"),
    ({"sampling.method": "pc", "sampling.solver_order": 2}, "dpm_solver_v3, unipc")])
def test_a_solver_option_for_another_method_names_the_methods_taking_it(overrides, takers):
  key = next(k for k in overrides if k != "sampling.method")
  with pytest.raises(ValueError, match=f"^{key} is an option of {takers}, not of "):
    load_config("configs/gmm_analytic.py:vpsde", overrides)
  load_config("configs/gmm_analytic.py:vpsde", {"sampling.method": takers.split(",")[0],
                                                 **{key: overrides[key]}})  # its own method's


def test_training_the_analytic_model_is_refused(tmp_path):
  with pytest.raises(ValueError, match="nothing to train"):
    train_mode(load_config("configs/gmm_analytic.py:vesde"), tmp_path)


def test_analytic_likelihood_from_the_command_line_equals_exact(tmp_path):
  config = load_config("configs/gmm_analytic.py:vpsde", {"eval.num_samples": 64,
                                                          "eval.batch_size": 64})
  record = likelihood(config, tmp_path)
  assert abs(record["continuous_nats_per_dim"] - record["exact_continuous_nats_per_dim"]) < 1e-3
  assert "nats_per_dim" not in record and "continuous_nats_per_dim / ln 2" in record["note"]
  assert (tmp_path / "likelihood.json").is_file()


@pytest.mark.parametrize("sde,steps", [("vpsde", 200), ("edm", 18)])
def test_training_lowers_loss_and_brings_samples_to_the_data(tmp_path, sde, steps):
  """DSM with PC sampling (VP), and EDM's loss, preconditioning and 18-step Heun sampler."""
  config = load_config(f"configs/toy.py:two_moons,{sde}", {
      "training.n_iters": 600, "training.batch_size": 256, "training.log_freq": 100,
      "training.snapshot_freq": 600, "training.snapshot_freq_for_preemption": 600,
      "model.nf": 64, "training.ema_rate": 0.99, "sde.num_scales": 200,
      "sampling.num_steps": steps, "sampling.num_samples": 500, "sampling.batch_size": 500})
  trained = train_mode(config, tmp_path)
  sde = build.build_sde(config)
  loss_fn = jax.jit(build.build_loss(config, sde, build.build_score_model(config, sde)))
  data = build.load_split(config, "test")
  initial = build_trainer(config).init_state().params
  before, after = (float(loss_fn(p, data, jax.random.key(0))[0]) for p in (initial, trained.params))
  assert after < 0.8 * before, (before, after)
  x = sample_mode(config, tmp_path)["samples"]
  prior = np.random.default_rng(0).standard_normal((500, 2)).astype(np.float32)
  distance, baseline = energy_distance(x, data[:500]), energy_distance(prior, data[:500])
  assert distance < 0.2 * baseline, (distance, baseline)
  assert (tmp_path / "samples" / f"unconditional_{config.sampling.method}_{steps}.png").is_file()


@pytest.mark.parametrize("method", ["dpm_solver_2m", "dpm_solver_3m", "dpm_solver_sde_2m",
                                    "unipc"])
def test_multistep_solvers_run_from_the_config(method):
  """solver_options maps config.sampling onto each solver's keywords (unipc: solver_order)."""
  options = {"sampling.solver_order": 3} if method == "unipc" else {}  # unipc's option only
  config = load_config("configs/gmm_analytic.py:vpsde", {
      "sampling.method": method, "sampling.num_steps": 5, "sampling.grid": "edm",
      "sampling.lower_order_final": False, **options})
  assert samplers.solver_options(method, config.sampling)["lower_order_final"] is False
  if method == "unipc":
    assert samplers.solver_options(method, config.sampling)["order"] == 3
  sde = build.build_sde(config)
  sample_fn = build.build_sampler(config, sde, build.build_score_model(config, sde))
  x, nfe = jax.jit(sample_fn)({"score": {}}, samplers.sample_keys(jax.random.key(0), np.arange(4)),
                              {})
  assert x.shape == (4, 2) and np.all(np.isfinite(x)) and np.all(nfe == 5)
