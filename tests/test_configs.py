"""Every config file loads, is locked, matches its family default's keys and builds its network.

Networks are only traced (jax.eval_shape), never allocated: the 1024x1024 NCSN++ costs seconds.
"""
import dataclasses
import importlib.util
import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import pytest

import data_sources
import models
import samplers
from configs import load_config
from workflows import build

ROOT = pathlib.Path(__file__).resolve().parent.parent
SDES = ("vesde", "vpsde", "subvpsde", "edm")
TOY = (*data_sources.toy.TOY_DATASETS, "gmm")
# Files whose get_config takes an argument: every value worth loading.
ARGS = {
    "toy.py": [f"{d},{s}" for d in TOY for s in SDES],
    "gmm_analytic.py": list(SDES),
    "digits.py": list(SDES),
    "ve/ncsn_cifar10.py": ["5", "124", "1245"],
    "ve/ncsn_celeba.py": ["5", "124", "1245"],
}
IMAGE_DEFAULTS = ("default_cifar10", "default_celeba", "default_lsun")
IMAGE_NETWORKS = ("ncsnpp", "ddpm", "ncsnv2", "ncsnv2_128", "ncsnv2_256", "ncsn")
KNOWN_PARAMS = {"vp/ddpm_cifar10.py": 35_218_947}  # Ho et al.'s 35.7M, exactly as score_sde


def _load_module(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f"_cfg_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


COUNT = _load_module(ROOT / "scripts" / "count_params.py")
FILES = [str(f.relative_to(ROOT / "configs")) for f in COUNT.config_files(ROOT)]
SPECS = FILES + [f"{f}:{a}" for f in FILES for a in ARGS.get(f, [])]


def _load(spec: str, overrides=None):
  return load_config(str(ROOT / "configs" / spec), overrides)


def _flat_keys(config, prefix=""):
  keys = set()
  for key, value in config.items():
    keys |= _flat_keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
  return keys


_COUNTS = {}


def _network_fields(name: str) -> set:
  """The config keys a network reads: its dataclass fields less flax's and the data's."""
  fields = dataclasses.fields(models.get_network_class(name))
  return {f.name for f in fields} - {"parent", "name", "centered", "label_classes",
                                     "remat"}  # remat: training.remat


def _count(config) -> int:
  """Parameter count, computed once per distinct network and input shape."""
  fields = _network_fields(config.model.name)
  key = (config.model.name, json.dumps({k: v for k, v in config.model.items() if k in fields}),
         build.data_info(config).shape, config.data.centered)
  if key not in _COUNTS:
    _COUNTS[key] = COUNT.count_params(config)
  return _COUNTS[key]


def test_every_paper_config_is_present():
  for name in ("ncsn_cifar10", "ncsnv2_cifar10", "ncsnpp_cifar10", "ncsnpp_cifar10_continuous",
               "ncsnpp_cifar10_deep_continuous", "ncsnpp_celeba", "ncsnv2_celeba",
               "ncsnpp_bedroom_continuous", "ncsnpp_church_continuous",
               "ncsnpp_ffhq_256_continuous", "ncsnpp_ffhq_1024_continuous",
               "ncsnpp_celebahq_256_continuous", "ncsnpp_celebahq_1024_continuous"):
    assert f"ve/{name}.py" in FILES
  for name in ("ddpm_cifar10", "ddpm_cifar10_continuous", "ddpmpp_cifar10",
               "ddpmpp_cifar10_continuous", "ddpmpp_cifar10_deep_continuous"):
    assert f"vp/{name}.py" in FILES
  for name in ("ddpm_cifar10_continuous", "ddpmpp_cifar10_continuous",
               "ddpmpp_cifar10_deep_continuous"):
    assert f"subvp/{name}.py" in FILES


def _family_default(module):
  """The default config a variant builds on, directly or through the variant it imports."""
  if hasattr(module, "get_default_configs"):
    return module.get_default_configs()
  parent = next(v for v in vars(module).values()
                if inspect.ismodule(v) and hasattr(v, "get_config"))
  return _family_default(parent)


@pytest.mark.parametrize("spec", SPECS)
def test_config_loads_locked_with_its_defaults_keys(spec):
  config = _load(spec)
  with pytest.raises(KeyError, match="batch_size"):
    _load(spec, {"training.batchsize": 8})
  assert _load(spec, {"training.batch_size": 8}).training.batch_size == 8
  path = spec.partition(":")[0]
  module = _load_module(ROOT / "configs" / path)
  default = _family_default(module)
  assert _flat_keys(config) == _flat_keys(default), "variants override keys, never add them"
  assert f"--config=configs/{path}" in module.__doc__, "the docstring shows the command line"
  if config.sde.name == "vesde" and config.data.dataset not in ("digits", *TOY):
    # the released networks divide by sigma, except NCSN v1 whose output is the score itself
    assert config.model.scale_by_sigma == (config.model.name != "ncsn")


@pytest.mark.parametrize("spec", SPECS)
def test_names_resolve_and_sde_and_optimizer_build(spec):
  config = _load(spec)
  data_sources.check_dataset_name(config.data.dataset)
  s = config.sampling
  assert s.predictor in samplers.PREDICTORS and s.corrector in samplers.CORRECTORS
  assert s.ode_solver in samplers.ODE_SOLVERS
  assert config.eval.trace_estimator in samplers.TRACE_ESTIMATORS
  assert build.build_sde(config).N == config.sde.num_scales
  samplers.get_solver(s.method)
  samplers.get_grid(s.grid)
  build.build_optimizer(config)
  if config.model.name not in models.EXACT_SCORES:
    models.get_network_class(config.model.name)


@pytest.mark.parametrize("spec", SPECS)
def test_network_builds_and_counts_params(spec):
  config = _load(spec)
  if config.model.name in models.EXACT_SCORES:
    return
  n = _count(config)
  assert n > 0
  if spec in KNOWN_PARAMS:
    assert n == KNOWN_PARAMS[spec]


@pytest.mark.parametrize("name", IMAGE_DEFAULTS)
def test_image_defaults_hold_every_key_the_code_and_networks_read(name):
  config = _load_module(ROOT / "configs" / f"{name}.py").get_default_configs()
  keys = _flat_keys(config)
  toy_only = {"data.data_seed", "data.num_train", "data.num_test", "data.gmm_weights",
              "data.gmm_means", "data.gmm_covs", "model.num_layers"}
  toy = _flat_keys(_load_module(ROOT / "configs" / "default_toy.py").get_default_configs())
  assert toy - toy_only <= keys
  assert {"data.image_size", "data.num_channels", "data.data_dir"} <= keys
  for net in IMAGE_NETWORKS:
    if net not in models.NETWORKS:
      pytest.skip(f"network {net!r} is not registered yet")
    assert {f"model.{f}" for f in _network_fields(net)} <= keys, f"{net} fields missing from {name}"


def test_ncsn_classes_follow_num_scales():
  config = _load("ve/ncsn_cifar10.py:124", {"sde.num_scales": 100})
  assert config.model.num_classes == 100
  assert _load("ve/ncsn_celeba.py").model.num_classes == 10


@pytest.mark.parametrize("spec", FILES)
def test_every_config_builds_its_sampler_and_traces_one_step(spec):
  """Config -> SDE, score model, parameterisation, grid and solver wire up: one sampling step
  of the configured method is traced (jax.eval_shape, no allocation) to the data's shape."""
  config = _load(spec, {"sampling.num_steps": 2})
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  key = jax.random.key(0)
  params = jax.eval_shape(lambda k: score_model.init(k, build.example_batch(config)), key)
  keys = samplers.sample_keys(key, jnp.arange(1))
  x, nfe = jax.eval_shape(build.build_sampler(config, sde, score_model), {"score": params}, keys,
                          {})
  assert x.shape == (1, *build.data_info(config).shape) and nfe.shape == (1,)
