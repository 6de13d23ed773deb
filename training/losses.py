"""Denoising score matching losses (Song et al. 2021, Eq. 7; SMLD: Song & Ermon 2019; DDPM: Ho et al. 2020).

Each loss is `loss(params, x (B, ...), rng) -> (scalar, per-example losses (B,))` built from a score
model with `.score(params, x, t, train=True, rng=...)`.
"""
import jax
import jax.numpy as jnp

from sde_lib import SDE, VESDE, VPSDE, SubVPSDE, batch_expand


def _reduce(x, reduce_mean: bool):
  """Mean or sum over all but the batch axis: (B, ...) -> (B,)."""
  flat = x.reshape(x.shape[0], -1)
  return jnp.mean(flat, axis=-1) if reduce_mean else jnp.sum(flat, axis=-1)


def continuous_dsm_loss(sde: SDE, score_model, *, reduce_mean: bool, likelihood_weighting: bool,
                        eps: float = 1e-5):
  """E_t E_{x(t)|x(0)} lambda(t) ||s(x(t), t) - grad log p_0t(x(t)|x(0))||^2, t ~ U(eps, T).

  lambda(t) = std(t)^2 (the paper's choice) or g(t)^2 (likelihood weighting).
  """

  def loss(params, x, rng):
    t_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    t = jax.random.uniform(t_rng, (x.shape[0],), minval=eps, maxval=sde.T)
    z = jax.random.normal(z_rng, x.shape)
    mean, std = sde.marginal_prob(x, t)
    score = score_model.score(params, mean + batch_expand(std, x) * z, t, train=True, rng=dropout_rng)
    if likelihood_weighting:
      g2 = jnp.square(sde.sde(jnp.zeros_like(x), t)[1])
      losses = _reduce(jnp.square(score + z / batch_expand(std, x)), reduce_mean) * g2
    else:
      losses = _reduce(jnp.square(score * batch_expand(std, x) + z), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def smld_loss(sde: VESDE, score_model, *, reduce_mean: bool):
  """NCSN loss: sum_i sigma_i^2 E ||s(x + sigma_i z, sigma_i) + z / sigma_i||^2 over the N noise levels."""

  def loss(params, x, rng):
    i_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    i = jax.random.randint(i_rng, (x.shape[0],), 0, sde.N)
    sigma = batch_expand(sde.discrete_sigmas[i], x)
    z = jax.random.normal(z_rng, x.shape)
    t = sde.step_time(i.astype(x.dtype))  # discrete level i <-> a time mapped back to i
    score = score_model.score(params, x + sigma * z, t, train=True, rng=dropout_rng)
    losses = _reduce(jnp.square(score * sigma + z), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def ddpm_loss(sde: VPSDE, score_model, *, reduce_mean: bool):
  """DDPM's simple loss E ||eps_theta(sqrt(a_i) x + sqrt(1 - a_i) z, i) - z||^2 with eps_theta = -std s."""

  def loss(params, x, rng):
    i_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    i = jax.random.randint(i_rng, (x.shape[0],), 0, sde.N)
    alpha_bar = sde.alphas_cumprod[i]
    std = batch_expand(jnp.sqrt(1.0 - alpha_bar), x)
    z = jax.random.normal(z_rng, x.shape)
    t = sde.step_time(i.astype(x.dtype))
    x_t = batch_expand(jnp.sqrt(alpha_bar), x) * x + std * z
    score = score_model.score(params, x_t, t, train=True, rng=dropout_rng)
    losses = _reduce(jnp.square(score * std + z), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def get_loss_fn(sde: SDE, score_model, *, continuous: bool, reduce_mean: bool,
                likelihood_weighting: bool, eps: float):
  """The paper's loss for this SDE: continuous DSM, or the discrete SMLD (VE) / DDPM (VP) loss."""
  if continuous:
    return continuous_dsm_loss(sde, score_model, reduce_mean=reduce_mean,
                               likelihood_weighting=likelihood_weighting, eps=eps)
  if likelihood_weighting:
    raise ValueError("likelihood_weighting needs continuous training (training.continuous=True).")
  if isinstance(sde, VESDE):
    return smld_loss(sde, score_model, reduce_mean=reduce_mean)
  if isinstance(sde, VPSDE) and not isinstance(sde, SubVPSDE):
    return ddpm_loss(sde, score_model, reduce_mean=reduce_mean)
  raise ValueError(f"Discrete training is defined for VE (SMLD) and VP (DDPM), not {type(sde).__name__}; "
                   "set training.continuous=True.")
