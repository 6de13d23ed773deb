"""Denoising score matching losses (Song et al. 2021, Eq. 7; SMLD: Song & Ermon 2019; DDPM: Ho et
al. 2020; EDM: Karras et al. 2022, Sec. 5).

Each loss is `loss(params, batch, rng) -> (scalar, per-example losses (B,))` built from a score
model with `.score(params, x, t, train=True, rng=...)` (and `.score_at_level` for discrete time).
`batch` is the data x (B, ...), or {"image": x, "label": (B,) int} for class-conditional models,
whose labels are replaced by the null label (= label_classes) with probability label_dropout
(classifier-free guidance, Ho & Salimans 2022). classifier_loss trains noise-conditional
classifiers p_t(y | x) (Song et al. 2021, App. I.1).
"""
import jax
import jax.numpy as jnp

from sde_lib import SDE, batch_expand
from sde_lib.tweedie import denoiser_from_score


def _reduce(x, reduce_mean: bool):
  """Mean or sum over all but the batch axis: (B, ...) -> (B,)."""
  flat = x.reshape(x.shape[0], -1)
  return jnp.mean(flat, axis=-1) if reduce_mean else jnp.sum(flat, axis=-1)


def split_batch(batch, rng, label_dropout: float = 0.0, label_classes: int = 0):
  """(x (B, ...), score keyword arguments): {} for a bare array, {"labels": (B,)} for a labelled
  batch, each label replaced by the null label label_classes with probability label_dropout
  (rng: fold_in 1 of the loss's key, so unlabelled losses keep their random streams)."""
  if not isinstance(batch, dict):
    return batch, {}
  labels = batch["label"].astype(jnp.int32)
  if label_dropout > 0:
    drop = jax.random.bernoulli(jax.random.fold_in(rng, 1), label_dropout, labels.shape)
    labels = jnp.where(drop, label_classes, labels)
  return batch["image"], {"labels": labels}


def likelihood_importance_times(sde: SDE, rng, shape, eps: float):
  """t with density p(t) = (g^2 / s^2) / Z on [eps, T] (ScoreFlow's importance sampling, Song et
  al. 2021b, Sec. 5.1), and Z, for every SDE here in closed form: g^2 = d(s^2)/dt - 2 (a'/a) s^2
  makes g^2 / s^2 = d log sigma^2 / dt (sigma = s / a), so log sigma is uniform and
  Z = 2 log(sigma(T) / sigma(eps)). shape: of t."""
  ends = sde.noise_level(jnp.array([eps, sde.T]))
  log_lo, log_hi = jnp.log(ends[0]), jnp.log(ends[1])
  log_sigma = jax.random.uniform(rng, shape, minval=log_lo, maxval=log_hi)
  return sde.time_at_noise_level(jnp.exp(log_sigma)), 2.0 * (log_hi - log_lo)


def continuous_dsm_loss(sde: SDE, score_model, *, reduce_mean: bool, likelihood_weighting: bool,
                        eps: float = 1e-5, label_dropout: float = 0.0, label_classes: int = 0,
                        output_weighting: bool = False, importance_sampling: bool = False):
  """E_t E_{x(t)|x(0)} lambda(t) ||s(x(t), t) - grad log p_0t(x(t)|x(0))||^2, t ~ U(eps, T).

  lambda(t) = std(t)^2 (the paper's choice), g(t)^2 (likelihood weighting), or with
  output_weighting (sigma^2 a / c_out)^2, under which the loss is the squared error of the
  network's output F itself (score = c_out F / (sigma^2 a) + ...; models.parameterization): the
  eps loss for vp_continuous (= std^2), Salimans & Ho's v loss for v_prediction.

  importance_sampling (with likelihood_weighting): t ~ g^2 / s^2 (likelihood_importance_times),
  so the loss is ||s score + z||^2 with the constant weight Z / (T - eps): the same expectation
  as the g^2-weighted loss (ScoreFlow's weight is 1; only the scale differs), lower variance.
  """

  def loss(params, batch, rng):
    x, labels = split_batch(batch, rng, label_dropout, label_classes)
    t_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    if importance_sampling:
      t, normaliser = likelihood_importance_times(sde, t_rng, (x.shape[0],), eps)
    else:
      t = jax.random.uniform(t_rng, (x.shape[0],), minval=eps, maxval=sde.T)
    z = jax.random.normal(z_rng, x.shape)
    mean, std = sde.marginal_prob(x, t)
    score = score_model.score(params, mean + batch_expand(std, x) * z, t, train=True,
                              rng=dropout_rng, **labels)
    if importance_sampling:
      losses = _reduce(jnp.square(score * batch_expand(std, x) + z), reduce_mean) * (
          normaliser / (sde.T - eps))
    elif likelihood_weighting:
      g2 = jnp.square(sde.sde(jnp.zeros_like(x), t)[1])
      losses = _reduce(jnp.square(score + z / batch_expand(std, x)), reduce_mean) * g2
    elif output_weighting:
      p = score_model.parameterization.precondition(t)
      factor = batch_expand(jnp.square(p.sigma) * p.scale / p.c_out, x)
      losses = _reduce(jnp.square((score + z / batch_expand(std, x)) * factor), reduce_mean)
    else:
      losses = _reduce(jnp.square(score * batch_expand(std, x) + z), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def discrete_dsm_loss(sde: SDE, score_model, *, reduce_mean: bool, label_dropout: float = 0.0,
                      label_classes: int = 0):
  """Denoising score matching over the SDE's N-level chain, level i ~ U{0..N-1} (the released
  code's discrete losses): x_i = alpha_i x + sigma_i z and E ||sigma_i s(x_i, i) + z||^2. With the
  VE table this is the NCSN loss (weights sigma_i^2); with the VP (DDPM) table it is DDPM's simple
  loss ||eps_theta - z||^2, eps_theta = -sigma_i s."""
  levels = sde.discrete_levels(sde.N)

  def loss(params, batch, rng):
    x, labels = split_batch(batch, rng, label_dropout, label_classes)
    i_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    i = jax.random.randint(i_rng, (x.shape[0],), 0, sde.N)
    alpha, sigma = batch_expand(levels.alphas[i], x), batch_expand(levels.sigmas[i], x)
    z = jax.random.normal(z_rng, x.shape)
    score = score_model.score_at_level(params, alpha * x + sigma * z, i, train=True,
                                       rng=dropout_rng, **labels)
    losses = _reduce(jnp.square(score * sigma + z), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def edm_loss(sde: SDE, score_model, *, reduce_mean: bool, sigma_data: float, p_mean: float,
             p_std: float, label_dropout: float = 0.0, label_classes: int = 0):
  """EDM's loss (Karras et al. 2022, Eq. 8 and Table 1): ln sigma ~ N(p_mean, p_std^2) for the
  noise level sigma = s / a, weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 on
  ||D(x(t), t) - x||^2, D the model's denoiser (Tweedie: (x + s^2 score) / a)."""

  def loss(params, batch, rng):
    x, labels = split_batch(batch, rng, label_dropout, label_classes)
    sigma_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    sigma = jnp.exp(p_mean + p_std * jax.random.normal(sigma_rng, (x.shape[0],)))
    t = sde.time_at_noise_level(sigma)
    mean, std = sde.marginal_prob(x, t)
    x_t = mean + batch_expand(std, x) * jax.random.normal(z_rng, x.shape)
    score = score_model.score(params, x_t, t, train=True, rng=dropout_rng, **labels)
    denoised = denoiser_from_score(x_t, score, sde.marginal_coeffs(t)[0], std)
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
    losses = weight * _reduce(jnp.square(denoised - x), reduce_mean)
    return jnp.mean(losses), losses

  return loss


def classifier_loss(sde: SDE, classifier, *, eps: float = 1e-5):
  """Cross-entropy of a noise-conditional classifier on x(t) ~ p_0t(x(t) | x(0)), t ~ U(eps, T):
  batch {"image": x(0) (B, ...), "label": (B,) int}; classifier.log_probs(params, x, t, train=True,
  rng=...) -> (B, K)."""

  def loss(params, batch, rng):
    x, labels = batch["image"], batch["label"].astype(jnp.int32)
    t_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    t = jax.random.uniform(t_rng, (x.shape[0],), minval=eps, maxval=sde.T)
    mean, std = sde.marginal_prob(x, t)
    x_t = mean + batch_expand(std, x) * jax.random.normal(z_rng, x.shape)
    log_probs = classifier.log_probs(params, x_t, t, train=True, rng=dropout_rng)
    losses = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(losses), losses

  return loss
