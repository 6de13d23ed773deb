"""Correctors of the predictor-corrector sampler (Song et al. 2021, Sec. 4.2, Alg. 4-5).

Each is a pure function (fns, x (B, ...), step, keys (B, key), snr, n_steps) -> x running n_steps MCMC steps that target p_t at the step's time; corrector step j draws its noise
from fold_in(keys, j) per sample. alpha = a_j^2 of the chain (1 for VE, 1 - beta_j for VP, as
the released `sde.alphas`). `Corrector.nfe(n_steps)` counts score calls per PC step.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from configs.errors import UserError
from samplers.per_sample_keys import per_sample_normal, per_sample_uniform
from sde_lib import batch_expand


class Corrector(NamedTuple):
  update: Callable  # (fns, x, step, keys, snr, n_steps) -> x
  nfe: Callable  # n_steps -> score evaluations per PC step


def _flat_norm(v):
  """Euclidean norm of each sample: (B, ...) -> (B,)."""
  return jnp.linalg.norm(v.reshape(v.shape[0], -1), axis=-1)


def _langevin_steps(fns, x, step, keys, n_steps, step_size_fn):
  """x <- x + e s(x, t) + sqrt(2 e) z, n_steps times, with e = step_size_fn(score, z) (B,)."""
  t = jnp.full((x.shape[0],), step.t, x.dtype)

  def body(j, x):
    grad = fns.score(x, t)
    noise = per_sample_normal(keys, j, x.shape[1:])
    size = batch_expand(step_size_fn(grad, noise), x)
    return x + size * grad + jnp.sqrt(2.0 * size) * noise

  return jax.lax.fori_loop(0, n_steps, body, x)


def langevin(fns, x, step, keys, snr, n_steps):
  """The released Langevin corrector (Alg. 4 VE / 5 VP): e = 2 alpha (r ||z|| / ||s||)^2 with both
  norms averaged over the WHOLE global batch, as the released code's pmean: a sample then depends
  on the rest of its batch (and on the batch size), but the step does not tilt the chain."""
  alpha = step.a**2
  size_fn = lambda grad, noise: jnp.full(grad.shape[:1], 2.0 * alpha * jnp.square(
      snr * jnp.mean(_flat_norm(noise)) / jnp.mean(_flat_norm(grad))))
  return _langevin_steps(fns, x, step, keys, n_steps, size_fn)


def langevin_per_sample(fns, x, step, keys, snr, n_steps):
  """Langevin with per-sample norms, e = 2 alpha (r ||z|| / ||s(x)||)^2: samples do not depend on
  their batch, but the step depends on x through ||s(x)||, which tilts the chain's fixed point to
  ~ p_t(x) ||s(x)||^2: a variance bias of about 2 / dim, negligible for images but heavy-tailed in
  2-D. Use 'mala' for an exact per-sample corrector."""
  alpha = step.a**2
  size_fn = lambda grad, noise: 2.0 * alpha * jnp.square(snr * _flat_norm(noise) / _flat_norm(grad))
  return _langevin_steps(fns, x, step, keys, n_steps, size_fn)


def annealed_langevin(fns, x, step, keys, snr, n_steps):
  """Annealed Langevin dynamics of NCSN (Song & Ermon 2019, Alg. 1) as in the released code:
  e = 2 alpha (r s(t))^2 with s(t) the perturbation kernel's standard deviation."""
  std = fns.sde.marginal_coeffs(jnp.full((1,), step.t, x.dtype))[1][0]
  size = 2.0 * step.a**2 * jnp.square(snr * std)
  return _langevin_steps(fns, x, step, keys, n_steps, lambda grad, noise: jnp.full(grad.shape[:1], size))


def mala(fns, x, step, keys, snr, n_steps):
  """Metropolis-adjusted Langevin with a per-sample step e(x) = 2 alpha (r sqrt(d) / ||s(x)||)^2
  (the Langevin rule with ||z|| at its typical value sqrt(d), so e depends on x alone and the
  proposal N(x + e(x) s(x), 2 e(x) I) has a density). The target ratio p_t(x') / p_t(x) comes
  from the trapezoidal line integral of the score, (s(x) + s(x')) . (x' - x) / 2: exact for
  Gaussian p_t, accurate to third order in the step otherwise. One score call per step plus one."""
  t = jnp.full((x.shape[0],), step.t, x.dtype)
  dim = x[0].size
  size_of = lambda grad: 2.0 * step.a**2 * snr**2 * dim / jnp.maximum(jnp.square(_flat_norm(grad)), 1e-30)
  flat = lambda v: v.reshape(v.shape[0], -1)

  def log_q(to, frm, grad, size):  # log N(to; frm + size grad, 2 size I), up to a constant
    return -jnp.sum(jnp.square(flat(to - frm - batch_expand(size, frm) * grad)), -1) / (
        4.0 * size) - 0.5 * dim * jnp.log(size)

  def body(j, carry):
    x, grad = carry
    size = size_of(grad)
    proposal = x + batch_expand(size, x) * grad + batch_expand(jnp.sqrt(2.0 * size), x) * per_sample_normal(keys, j, x.shape[1:])
    new_grad = fns.score(proposal, t)
    log_ratio = 0.5 * jnp.sum(flat(grad + new_grad) * flat(proposal - x), -1)
    log_accept = (log_ratio + log_q(x, proposal, new_grad, size_of(new_grad))
                  - log_q(proposal, x, grad, size))
    accept = jnp.log(per_sample_uniform(keys, n_steps + j)) < log_accept
    pick = lambda new, old: jnp.where(batch_expand(accept, old), new, old)
    return pick(proposal, x), pick(new_grad, grad)

  return jax.lax.fori_loop(0, n_steps, body, (x, fns.score(x, t)))[0]


def no_corrector(fns, x, step, keys, snr, n_steps):
  """Identity: predictor-only sampling."""
  del fns, step, keys, snr, n_steps
  return x


CORRECTORS = {
    "langevin": Corrector(langevin, lambda n: n),
    "langevin_per_sample": Corrector(langevin_per_sample, lambda n: n),
    "mala": Corrector(mala, lambda n: n + 1 if n else 0),
    "ald": Corrector(annealed_langevin, lambda n: n),
    "none": Corrector(no_corrector, lambda n: 0),
}


def get_corrector(name: str) -> Corrector:
  """The corrector registered as `name` (one of CORRECTORS)."""
  if name not in CORRECTORS:
    raise UserError(f"Unknown corrector {name!r}; choose one of {sorted(CORRECTORS)}.")
  return CORRECTORS[name]
