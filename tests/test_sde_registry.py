"""Every registered process (sde_lib.SDES), built from a config's sde section: marginals against
a simulated forward SDE, kernels against marginals, and the methods samplers and classifiers read.
A process added to SDES is tested here with no new test code."""
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sde_lib
from configs import default_toy
from configs.errors import UserError
from models.classifiers import NOISE_INPUTS
from sde_lib import batch_expand

NAMES = sorted(sde_lib.SDES)
NUM_SAMPLES = 4000  # Monte-Carlo standard errors: mean s / 63, std s / 89
NUM_STEPS = 2000  # Euler-Maruyama's bias (at most VE's: ln(200) / 2000 of the variance) < 0.2 SE
FRACTIONS = (0.3, 1.0)  # checked times, as fractions of T
MAX_Z = 5.0


def sde_section(name: str) -> dict:
  """configs/default_toy.py's sde section for `name`, its values unlike the processes' defaults."""
  section = default_toy.get_default_configs().sde.to_dict()
  section.update(name=name, sigma_min=0.02, sigma_max=4.0, beta_min=0.2, beta_max=15.0,
                 num_scales=123)
  return section


def build(name: str) -> sde_lib.SDE:
  return sde_lib.build_sde(name, sde_section(name))


def two_clusters(n: int) -> jax.Array:
  """A fixed non-Gaussian x0 (n, 2): unequal clusters at (-2, 1) and (1.5, -0.5)."""
  rng = np.random.default_rng(0)
  centres = np.where(rng.random((n, 1)) < 0.3, [[-2.0, 1.0]], [[1.5, -0.5]])
  return jnp.asarray(centres + 0.3 * rng.standard_normal((n, 2)))


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def simulate_forward(sde, x0, key, stops, num_steps):
  """Euler-Maruyama on dx = f dt + g dw, dt = T / num_steps, from x(0) ~ N(a(0) x0, s(0)^2 I)
  (the marginal at t = 0: VE's s(0) = sigma_min): x at the steps `stops` (ascending),
  (len(stops), B, D)."""
  dt = sde.T / num_steps
  a0, s0 = sde.marginal_coeffs(jnp.zeros(x0.shape[:1], x0.dtype))
  start_key, key = jax.random.split(key)
  x = batch_expand(a0, x0) * x0 + batch_expand(s0, x0) * jax.random.normal(start_key, x0.shape,
                                                                           x0.dtype)

  def step(i, x):
    drift, diffusion = sde.sde(x, jnp.full(x.shape[:1], i * dt, x.dtype))
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    return x + drift * dt + batch_expand(diffusion, x) * np.sqrt(dt) * noise

  out, start = [], 0
  for stop in stops:
    x = jax.lax.fori_loop(start, stop, step, x)
    out.append(x)
    start = stop
  return jnp.stack(out)


def marginal_z_scores(sde: sde_lib.SDE, x0: jax.Array, key: jax.Array) -> np.ndarray:
  """Standard errors (len(FRACTIONS), 2, D) by which the residual x(t) - a(t) x0 of a simulated
  batch misses mean 0 and std s(t) (its kernel p_0t, Eq. 33 for VP) at t = FRACTIONS T; all
  |z| < MAX_Z where marginal_coeffs is the SDE's."""
  stops = tuple(round(f * NUM_STEPS) for f in FRACTIONS)
  xs = simulate_forward(sde, x0, key, stops, NUM_STEPS)
  a, s = sde.marginal_coeffs(jnp.asarray(stops, x0.dtype) * (sde.T / NUM_STEPS))
  residual = xs - a[:, None, None] * x0[None]
  n = x0.shape[0]
  z_mean = residual.mean(1) / (s[:, None] / np.sqrt(n))
  z_std = (residual.std(1) - s[:, None]) / (s[:, None] / np.sqrt(2 * (n - 1)))
  return np.stack([z_mean, z_std], 1)


def doubled_diffusion(cls: type) -> type:
  """A deliberately wrong process: cls with g doubled and its kernel unchanged."""

  @dataclasses.dataclass(frozen=True)
  class Doubled(cls):
    def sde(self, x, t):
      drift, diffusion = super().sde(x, t)
      return drift, 2.0 * diffusion

  return Doubled


@pytest.mark.parametrize("name", NAMES)
def test_build_sde_takes_the_config_sections_fields(name):
  section = sde_section(name)
  sde = sde_lib.build_sde(name, section)
  assert type(sde) is sde_lib.SDES[name]
  config_keys = {field: key for key, field in sde_lib.FIELD_ALIASES.items()}
  for field in dataclasses.fields(sde):
    key = config_keys.get(field.name, field.name)
    if key in section:
      assert getattr(sde, field.name) == section[key], field.name
  assert sde.N == section["num_scales"]


def test_build_sde_lists_the_names_for_an_unknown_one():
  with pytest.raises(UserError, match=".*".join(map(re.escape, NAMES))):
    sde_lib.build_sde("ito", sde_section("ito"))


@pytest.mark.parametrize("name", NAMES)
def test_marginals_match_the_simulated_forward_sde(name):
  with jax.enable_x64(True):
    z = marginal_z_scores(build(name), two_clusters(NUM_SAMPLES), jax.random.key(1))
  assert np.abs(z).max() < MAX_Z, z


@pytest.mark.parametrize("name", NAMES)
def test_marginal_check_fails_for_doubled_diffusion(name):
  # Doubling g quadruples the variance: |z| ~ 90 at this sample size.
  wrong = doubled_diffusion(sde_lib.SDES[name])(**dataclasses.asdict(build(name)))
  with jax.enable_x64(True):
    z = marginal_z_scores(wrong, two_clusters(NUM_SAMPLES), jax.random.key(1))
  assert np.abs(z).max() > MAX_Z, z


@pytest.mark.parametrize("name", NAMES)
def test_transition_kernels_compose_the_marginals_and_noise_level_inverts(name):
  sde = build(name)
  with jax.enable_x64(True):
    times = jnp.array([0.0, 1e-4, 1e-2, 0.3, 0.7, 1.0]) * sde.T
    i, j = np.triu_indices(len(times), 1)
    t_from, t_to = times[i], times[j]
    a, b = sde.transition_coeffs(t_from, t_to)
    (a_from, s_from), (a_to, s_to) = sde.marginal_coeffs(t_from), sde.marginal_coeffs(t_to)
    np.testing.assert_allclose(a * a_from, a_to, rtol=1e-12)
    np.testing.assert_allclose(b**2 + (a * s_from) ** 2, s_to**2, rtol=1e-10)
    levels = sde.noise_level(times[1:])
    assert np.all(np.diff(levels) > 0)
    np.testing.assert_allclose(sde.time_at_noise_level(levels), times[1:], rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_ancestral_std_and_classifier_input_are_valid(name):
  """Ancestral noise lies between the posterior's (SMLD, Eq. 47) and the forward step's (DDPM),
  the two extremes of Ho et al. (2020, Sec. 3.2); the classifier input is one models reads."""
  sde = build(name)
  levels = sde.discrete_levels(sde.N)
  b, sigma, sigma_next = levels.b[1:], levels.sigmas[1:], levels.sigmas[:-1]
  std = np.asarray(sde.ancestral_std(b, sigma, sigma_next))
  assert std.shape == b.shape
  assert np.all(std >= b * sigma_next / sigma * (1 - 1e-6)) and np.all(std <= b * (1 + 1e-6))
  assert sde.classifier_noise_input() in NOISE_INPUTS


@pytest.mark.parametrize("name, posterior, noise_input", [
    ("vesde", True, "log_sigma"), ("vpsde", False, "time"), ("subvpsde", False, "time"),
    ("edm", True, "log_sigma")])
def test_documented_ancestral_std_and_classifier_input(name, posterior, noise_input):
  sde = build(name)
  b, sigma, sigma_next = jnp.array([0.3, 0.1]), jnp.array([2.0, 0.5]), jnp.array([1.5, 0.4])
  expected = b * sigma_next / sigma if posterior else b
  np.testing.assert_allclose(sde.ancestral_std(b, sigma, sigma_next), expected, rtol=1e-6)
  assert sde.classifier_noise_input() == noise_input
