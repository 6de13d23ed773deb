"""The Python API (workflows.load) runs main.py's code paths: its samples are bit-identical to
--mode=sample's, and its score, denoiser and likelihood are the exact ones of the analytic
mixture."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import workflows
from cli import MainProcesses
from workflows import build

SPEC = "configs/gmm_analytic.py:vpsde"
SETTINGS = ("--config.sampling.num_samples=96", "--config.sampling.batch_size=32",
            "--config.sampling.method=pc", "--config.sampling.num_steps=40")


@pytest.mark.parametrize("extra", [{}, {"task": "inpaint", "guidance.method": "classifier"}])
def test_sample_is_bit_identical_to_main(tmp_path, extra):
  with MainProcesses() as cli:
    result = cli.run(f"--config={SPEC}", f"--workdir={tmp_path}", "--mode=sample", *SETTINGS,
                     *(f"--config.sampling.{k}={v}" for k, v in extra.items()))
  assert result.returncode == 0, result.stderr
  written = np.load(next((tmp_path / "samples").glob("*.npz")))["samples"]
  model = workflows.load(SPEC, tmp_path)
  x = model.sample(96, method="pc", num_steps=40, batch_size=32, **extra)
  np.testing.assert_array_equal(x, written)


def test_score_denoiser_and_likelihood_are_the_mixture_s():
  model = workflows.load(SPEC, **{"eval.rtol": 1e-6, "eval.atol": 1e-6})
  config = model.config
  sde = build.build_sde(config)
  mixture = build.build_mixture(config.data)
  x = np.asarray(jax.random.normal(jax.random.key(0), (16, 2)), np.float32) * 2.0
  t = np.linspace(0.05, 1.0, 16, dtype=np.float32)
  a, s = sde.marginal_coeffs(jnp.asarray(t))
  exact = mixture.score(jnp.asarray(x), a, s)
  np.testing.assert_allclose(model.score(x, t), exact, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(model.denoise(x, t), (x + (s**2)[:, None] * exact) / a[:, None],
                             rtol=1e-4, atol=1e-4)
  points = np.asarray(mixture.sample(np.random.default_rng(1), 8), np.float32)
  exact_logp = mixture.log_prob(jnp.asarray(points), *sde.marginal_coeffs(jnp.full((8,), 1e-5)))
  np.testing.assert_allclose(model.likelihood(points), exact_logp, atol=2e-2)  # Hutchinson
  exact_trace = model.likelihood_arrays(points, trace_estimator="exact")
  np.testing.assert_allclose(exact_trace["logp"], exact_logp, atol=2e-3)
  assert exact_trace["nfe"].shape == (8,) and np.all(exact_trace["nfe"] >= 10)
