"""How a network's output becomes a score: preconditioning in the sense of Karras et al. (2022, Table 1).

At time t the SDE's kernel is N(a x0, s^2 I). With the unscaled x~ = x / a and its noise level
sigma = s / a, a network F is wrapped as the denoiser

  D(x~; sigma) = c_skip x~ + c_out F(c_in x~, c_noise),

an estimate of E[x0 | x]; then score = (D - x~) / (sigma^2 a) and eps = -s score. Each
parameterisation returns these coefficients at times t (B,). The released score_sde conventions
are parameterisations too, chosen so the score equals the released `get_score_fn` exactly (the
discrete ones also give `precondition_level(i)` at the table's level i, for the discrete losses):

  vp_continuous  VP / sub-VP, continuous: labels 999 t, score = -F / s(t);
  vp_discrete    VP, discrete (DDPM): labels t (N - 1), score = -F / sqrt(1 - alphas_cumprod[i]),
                 i = floor(t (N - 1));
  ve_continuous  VE, continuous: labels sigma(t), score = F / sigma(t) (F if not scale_by_sigma);
  ve_discrete    VE, discrete (SMLD): labels k = round((T - t)(N - 1)), the index of sigma in the
                 descending table, score = F / sigmas_desc[k] (F if not scale_by_sigma);
  edm            Karras et al.'s preconditioning with sigma_data, c_noise = ln(sigma) / 4;
  v_prediction   Salimans & Ho (2022): F predicts v = (a eps - s x0) / sqrt(a^2 + s^2) (for VP,
                 a eps - s x0), labels 999 t; so x0 = (a x - s sqrt(a^2 + s^2) v) / (a^2 + s^2).
"""
import dataclasses
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

import jax.numpy as jnp

from configs.errors import ArgumentError
from sde_lib import SDE


class Preconditioning(NamedTuple):
  """Per-example coefficients (B,) at times t; scale = a(t), sigma = s(t) / a(t)."""

  scale: jnp.ndarray
  sigma: jnp.ndarray
  c_in: jnp.ndarray
  c_noise: jnp.ndarray
  c_skip: jnp.ndarray
  c_out: jnp.ndarray


class Parameterization(Protocol):
  """A parameterisation: a dataclass whose first field is the SDE and whose other fields are
  config.model keys (workflows.build fills them by name). network_embedding: the
  model.embedding_type its c_noise needs (None: any)."""

  sde: SDE
  network_embedding: ClassVar[str | None]

  def precondition(self, t) -> Preconditioning:
    """Coefficients at times t (B,)."""


@runtime_checkable
class DiscreteParameterization(Parameterization, Protocol):
  """One that also gives the coefficients at the SDE's table level i, for the discrete losses."""

  def precondition_level(self, i) -> Preconditioning:
    """Coefficients at levels i (B,) int."""


def _unit_skip(sde: SDE, t, c_noise, c_out_of_sigma):
  """The released conventions: c_skip = 1, the network sees x itself (c_in x~ = x)."""
  scale, std = sde.marginal_coeffs(t)
  sigma = std / scale
  return Preconditioning(scale, sigma, scale, c_noise, jnp.ones_like(t), c_out_of_sigma(sigma))


def _level_skip(scale, std, labels, c_out_of_sigma):
  """_unit_skip at a table level: its mean coefficient and std (B,), labels (B,)."""
  sigma = std / scale
  return Preconditioning(scale, sigma, scale, labels.astype(std.dtype), jnp.ones_like(std),
                         c_out_of_sigma(sigma))


@dataclasses.dataclass(frozen=True)
class VPContinuous:
  """Released VP / sub-VP continuous models: labels 999 t, eps = F, score = -F / s(t)."""

  sde: SDE
  network_embedding: ClassVar[str | None] = None

  def precondition(self, t) -> Preconditioning:
    return _unit_skip(self.sde, t, 999.0 * t, lambda sigma: -sigma)


@dataclasses.dataclass(frozen=True)
class VPDiscrete:
  """Released DDPM models: labels t (N - 1) (not rounded), score = -F / std_table[floor(label)]."""

  sde: SDE
  network_embedding: ClassVar[str | None] = None

  def precondition(self, t) -> Preconditioning:
    labels = t * (self.sde.N - 1)
    std = self.sde.discrete_levels(self.sde.N).sigmas[labels.astype(jnp.int32)]
    scale, marginal_std = self.sde.marginal_coeffs(t)
    # score = c_out F / (sigma^2 a) = -F / std  <=>  c_out = -sigma^2 a / std.
    return _unit_skip(self.sde, t, labels, lambda sigma: -sigma * marginal_std / std)

  def precondition_level(self, i) -> Preconditioning:
    """At table level i (B,) int, as the released DDPM loss: labels i, x = alpha_i x0 + std_i z."""
    levels = self.sde.discrete_levels(self.sde.N)
    return _level_skip(levels.alphas[i], levels.sigmas[i], i, lambda sigma: -sigma)


@dataclasses.dataclass(frozen=True)
class VEContinuous:
  """Released VE continuous models: labels sigma(t), score = F / sigma(t) (or F)."""

  sde: SDE
  network_embedding: ClassVar[str | None] = None
  scale_by_sigma: bool = True

  def precondition(self, t) -> Preconditioning:
    sigma = self.sde.marginal_coeffs(t)[1]
    c_out = (lambda s: s) if self.scale_by_sigma else jnp.square
    return _unit_skip(self.sde, t, sigma, c_out)


@dataclasses.dataclass(frozen=True)
class VEDiscrete:
  """Released SMLD models: labels round((T - t)(N - 1)), score = F / sigmas_desc[label] (or F)."""

  sde: SDE
  network_embedding: ClassVar[str | None] = None
  scale_by_sigma: bool = True

  def labels(self, t):
    """Index of the noise level in the descending table, as floats: (B,) -> (B,)."""
    return jnp.round((self.sde.T - t) * (self.sde.N - 1))

  def precondition(self, t) -> Preconditioning:
    labels = self.labels(t)
    ascending = self.sde.discrete_levels(self.sde.N).sigmas
    table_sigma = ascending[self.sde.N - 1 - labels.astype(jnp.int32)]
    c_out = (lambda s: s * s / table_sigma) if self.scale_by_sigma else jnp.square
    return _unit_skip(self.sde, t, labels, c_out)

  def precondition_level(self, i) -> Preconditioning:
    """At table level i (B,) int (ascending sigmas), as the released SMLD loss."""
    sigma = self.sde.discrete_levels(self.sde.N).sigmas[i]
    c_out = (lambda s: s) if self.scale_by_sigma else jnp.square
    return _level_skip(jnp.ones_like(sigma), sigma, self.sde.N - 1 - i, c_out)


@dataclasses.dataclass(frozen=True)
class EDM:
  """Karras et al. (2022), Table 1 (their EDM column), applied to x~ = x / a for any SDE."""

  sde: SDE
  network_embedding: ClassVar[str | None] = "positional"  # c_noise = ln(sigma) / 4
  sigma_data: float = 0.5

  def precondition(self, t) -> Preconditioning:
    scale, std = self.sde.marginal_coeffs(t)
    sigma = std / scale
    total = jnp.square(sigma) + self.sigma_data**2
    return Preconditioning(scale, sigma, c_in=1.0 / jnp.sqrt(total), c_noise=0.25 * jnp.log(sigma),
                           c_skip=self.sigma_data**2 / total,
                           c_out=sigma * self.sigma_data / jnp.sqrt(total))


@dataclasses.dataclass(frozen=True)
class VPrediction:
  """Salimans & Ho (2022, Sec. 4, "v-parameterisation"), for any kernel: the network sees
  x / sqrt(a^2 + s^2) and labels 999 t and predicts v = (a eps - s x0) / sqrt(a^2 + s^2), so
  D = (a x - s sqrt(a^2 + s^2) F) / (a^2 + s^2): in x~ = x / a with sigma = s / a, EDM's
  coefficients at sigma_data = 1 with F negated (the two are one family, Karras et al. App. B.6)."""

  sde: SDE
  network_embedding: ClassVar[str | None] = None

  def precondition(self, t) -> Preconditioning:
    scale, std = self.sde.marginal_coeffs(t)
    sigma = std / scale
    total = jnp.square(sigma) + 1.0
    return Preconditioning(scale, sigma, c_in=1.0 / jnp.sqrt(total), c_noise=999.0 * t,
                           c_skip=1.0 / total, c_out=-sigma / jnp.sqrt(total))


PARAMETERIZATIONS = {"vp_continuous": VPContinuous, "vp_discrete": VPDiscrete,
                     "ve_continuous": VEContinuous, "ve_discrete": VEDiscrete, "edm": EDM,
                     "v_prediction": VPrediction}
# The released code's choice for (SDE name, continuous training).
RELEASED = {("vpsde", True): "vp_continuous", ("vpsde", False): "vp_discrete",
            ("subvpsde", True): "vp_continuous", ("subvpsde", False): "vp_continuous",
            ("vesde", True): "ve_continuous", ("vesde", False): "ve_discrete"}


def parameterization_name(name: str, sde_name: str, continuous: bool) -> str:
  """Resolves 'score_sde' (the released convention for this SDE) and checks the name."""
  if name == "score_sde":
    if (sde_name, continuous) not in RELEASED:
      raise ArgumentError("parameterization", "The released code has no convention for sde "
                          f"{sde_name!r}; set {{arg}} to one of {sorted(PARAMETERIZATIONS)}.")
    return RELEASED[(sde_name, continuous)]
  if name not in PARAMETERIZATIONS:
    raise ArgumentError("parameterization", f"Unknown {{arg}} {name!r}; choose 'score_sde' or "
                        f"one of {sorted(PARAMETERIZATIONS)}.")
  return name


def preconditioned_score(p: Preconditioning, x, net_out):
  """score = (c_out F - (1 - c_skip) x~) / (sigma^2 a), x and F (B, ...): (B, ...)."""
  expand = lambda v: jnp.reshape(v, v.shape + (1,) * (x.ndim - 1))
  out_coeff = p.c_out / (jnp.square(p.sigma) * p.scale)
  skip_coeff = (1.0 - p.c_skip) / jnp.square(p.sigma * p.scale)
  return expand(out_coeff) * net_out - expand(skip_coeff) * x


def network_input(p: Preconditioning, x):
  """c_in x~ = (c_in / a) x: (B, ...) -> (B, ...)."""
  return jnp.reshape(p.c_in / p.scale, p.c_in.shape + (1,) * (x.ndim - 1)) * x
