"""Time-conditioned MLP score network for low-dimensional data."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from configs.errors import UserError
from models.label_embedding import add_class_embedding


def sinusoidal_embedding(labels, dim: int, max_positions: int = 10000):
  """Transformer sinusoidal embedding of scalar labels: (B,) -> (B, dim)."""
  half = dim // 2
  freqs = jnp.exp(-np.log(max_positions) * jnp.arange(half) / (half - 1))
  angles = labels[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class MLP(nn.Module):
  """x (B, D), noise label (B,) -> output (B, D); residual blocks with the label embedding added.
  Inputs of other shapes (B, ...) are flattened to (B, D) and the output reshaped back.

  embedding_type 'fourier' embeds log(label) (VE: label = sigma), 'positional' the label itself
  (VP: label = 999 t or a timestep index).
  """

  nf: int = 128
  num_layers: int = 3
  embedding_type: str = "positional"
  label_classes: int = 0  # > 0: class-conditional (class_labels 0..n-1, n: the null label)

  @nn.compact
  def __call__(self, x, labels, train: bool = False, class_labels=None):
    del train
    if self.embedding_type == "fourier":
      labels = 100.0 * jnp.log(labels)
    elif self.embedding_type != "positional":
      raise UserError(f"Unknown embedding_type {self.embedding_type!r}; use 'fourier' or 'positional'.")
    temb = sinusoidal_embedding(labels, self.nf)
    temb = nn.Dense(self.nf)(nn.swish(nn.Dense(self.nf)(temb)))
    temb = add_class_embedding(temb, class_labels, self.label_classes)
    flat = x.reshape(x.shape[0], -1)
    h = nn.Dense(self.nf)(flat)
    for _ in range(self.num_layers):
      h = h + nn.Dense(self.nf)(nn.swish(h + temb))
    return nn.Dense(flat.shape[-1])(nn.swish(h)).reshape(x.shape)
