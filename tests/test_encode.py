"""ODE inversion: on the exact mixture the encode-decode round trip's error falls at the solver's
order, and the latents of the data's marginal are N(0, I); slerp; digits from the command line
(encode, then decode the latents file with --mode=sample); refusals in one line."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import configs
from configs import load_config
from oracles import MIX, gmm_fns
from samplers import get_solver, make_grid, sample_keys
from sde_lib import VPSDE
from test_inverse_cli import TINY_DIGITS, run_main, untrained_workdir
from workflows import sample as sample_mode
from workflows.encode import encode, slerp

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

EPS = 1e-3


def transport(name, times, x, **options):
  """Solver `name` from x (B, 2) at times[0] along `times`, without the denoising step."""
  fns = gmm_fns(VPSDE()).with_start(lambda keys, shape: x)
  keys = sample_keys(jax.random.key(0), jnp.arange(x.shape[0]))
  return get_solver(name).sample(fns, times, keys, (2,), denoise=False, **options)[0]


def marginal_draws(count: int, seed: int = 0) -> np.ndarray:
  """Draws of p_eps: a(eps) x0 + s(eps) z with x0 from the mixture."""
  rng = np.random.default_rng(seed)
  a, s = (float(v[0]) for v in VPSDE().marginal_coeffs(jnp.array([EPS])))
  return a * np.asarray(MIX.sample(rng, count)) + s * rng.normal(size=(count, 2))


@pytest.mark.parametrize("name,order,options", [
    ("heun", 2, {}), ("dpm_solver_2m", 2, {"lower_order_final": False}), ("deis", 4, {})])
def test_round_trip_error_falls_at_least_at_the_solver_s_order(name, order, options):
  """RMS of decode(encode(x)) - x at 20, 40, 80 steps (edm grid, float64): the slopes were
  2.9-3.1 for Heun and DPM-Solver++(2M) (there and back again cancels the leading error term)
  and 4.4-4.6 for DEIS-4."""
  with jax.enable_x64(True):
    x = jnp.asarray(marginal_draws(32))
    errors = []
    for n in (20, 40, 80):
      times = make_grid(VPSDE(), "edm", n, EPS)
      back = transport(name, times, transport(name, times[::-1], x, **options), **options)
      errors.append(float(jnp.sqrt(jnp.mean(jnp.square(back - x)))))
  slopes = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
  assert np.all(slopes > order - 0.3) and errors[-1] < 1e-3, (errors, slopes)


def test_latents_of_the_data_marginal_are_standard_normal():
  """KS per coordinate and the moments; data scaled by 1.5 gives latents that fail."""
  with jax.enable_x64(True):
    times = make_grid(VPSDE(), "edm", 60, EPS)[::-1]
    encode = jax.jit(lambda x: transport("heun", times, x))
    x = marginal_draws(2000, seed=1)
    latents, scaled = np.asarray(encode(jnp.asarray(x))), np.asarray(encode(jnp.asarray(1.5 * x)))
  n = len(latents)
  for k in range(2):
    assert stats.kstest(latents[:, k], "norm").pvalue > 1e-3
    assert abs(latents[:, k].mean()) < 4 / np.sqrt(n)
    assert abs(latents[:, k].var() - 1) < 4 * np.sqrt(2 / n)
  assert min(stats.kstest(scaled[:, k], "norm").pvalue for k in range(2)) < 1e-6


def test_slerp_follows_the_great_circle_and_interpolates_norms():
  a, b = np.array([3.0, 0.0]), np.array([0.0, 2.0])
  points = slerp(a, b, np.linspace(0, 1, 5))
  np.testing.assert_allclose(points[[0, -1]], [a, b], atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(points, axis=1), np.linspace(3, 2, 5), rtol=1e-12)
  np.testing.assert_allclose(np.arctan2(points[:, 1], points[:, 0]), np.linspace(0, np.pi / 2, 5),
                             atol=1e-12)


DIGITS = {**TINY_DIGITS, "sampling.method": "heun", "sampling.num_steps": 12,
          "sampling.noise_removal": False, "sampling.inverse.num_inputs": 6}


@pytest.mark.slow  # CI budget, 20-33 s: two CLI processes on digits
def test_digits_round_trip_from_the_command_line(tmp_path):
  """Encode 6 test digits with 12 Heun steps (22 NFE each way) and decode them: the per-example
  RMS error (pixels in [-1, 1]) stays below 0.05; decoding the latents file with --mode=sample
  gives the same reconstructions."""
  config = load_config("configs/digits.py:vpsde", DIGITS)
  workdir = untrained_workdir(tmp_path, config)
  result = run_main(f"--workdir={workdir}", "--mode=encode")
  assert result.returncode == 0, result.stderr
  written = workdir / "latents" / "encode_heun_12.npz"
  assert str(written) in result.stdout
  with np.load(written) as f:
    inputs, latents, recon, error, nfe = (f[k] for k in ("inputs", "latents", "reconstructions",
                                                         "error", "nfe"))
  assert latents.shape == inputs.shape == (6, 8, 8, 1) and np.all(nfe == 22)
  assert np.all(error < 0.05) and np.abs(latents - inputs).max() > 0.5  # not the inputs
  decoded = sample_mode(load_config(str(workdir), {"sampling.latents_from": str(written)}),
                               workdir)
  np.testing.assert_allclose(decoded["samples"], recon, rtol=1e-4, atol=1e-4)
  assert (workdir / "samples" / "unconditional_decoded_heun_12.npz").exists()


def test_encoding_needs_a_deterministic_grid_solver_and_latents_must_fit(tmp_path):
  config = load_config("configs/gmm_analytic.py:vpsde", {"sampling.method": "heun",
                                                         "sampling.s_churn": 5.0})
  with pytest.raises(ValueError, match=r"deterministic grid solver.*s_churn=0"):
    encode(config, tmp_path)
  np.savez(tmp_path / "z.npz", latents=np.zeros((4, 3)))
  config = load_config("configs/gmm_analytic.py:vpsde", {"sampling.latents_from": str(tmp_path / "z.npz")})
  with pytest.raises(ValueError, match=r"shaped \(3,\), the model's data \(2,\)"):
    sample_mode(config, tmp_path)
  with pytest.raises(ValueError, match=r"latents_from decodes latents without observations"):
    sample_mode(configs.with_overrides(config, {"sampling.task": "inpaint"}), tmp_path)
