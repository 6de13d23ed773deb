"""The paper's conditional sampler for linear inverse problems (Song et al. 2021, App. I.2-I.3):
after every solver update, replace the observed part of x by the observation perturbed to the
time x is at,

  x <- (I - P) x + P (a(t) A^+ y + s(t) z),   z ~ N(0, I) per sample and step,

(P = A^+ A; conditioning.linear), and at the end (t = None: clean data) by A^+ y itself. For a
mask the known pixels of the output then equal the input's bit for bit. It is the `project` hook
of samplers.ModelFns, so every grid solver runs it; the adaptive ODE refuses it.

The observation is noise-free: y = A x exactly (replacement would copy any noise into x; with
sampling.inverse.observation_noise > 0 the workflow asks for inverse.method pigdm or dps, the
posterior guidance of conditioning.posterior).
"""
from samplers.per_sample_keys import per_sample_normal, step_keys
from sde_lib import batch_expand

# The replacement noise of sample j at hook step s comes from fold_in(fold_in(key_j, this), s):
# a stream apart from the solvers' fold_in(key_j, s).
REPLACEMENT_STREAM = 0x5EED_0001


def replacement_project(sde, observation, y, keys):
  """The project hook (x (B, ...), t (B,) or None, step) -> x for observations y (B, ...) of
  `observation` (conditioning.linear) and per-sample keys (B, key)."""
  clean = observation.lift(y)
  noise_keys = step_keys(keys, REPLACEMENT_STREAM)

  def project(x, t, step):
    if t is None:
      return observation.replace(x, clean.astype(x.dtype))
    a, s = sde.marginal_coeffs(t)
    z = per_sample_normal(noise_keys, step, x.shape[1:]).astype(x.dtype)
    return observation.replace(x, batch_expand(a, x) * clean + batch_expand(s, x) * z)

  return project
