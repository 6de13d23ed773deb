"""Class-label embeddings for class-conditional score networks (classifier-free guidance, Ho &
Salimans 2022): label_classes + 1 rows, the last one the null label of unconditional outputs."""
import flax.linen as nn
import jax.numpy as jnp

from configs.errors import ArgumentError


def null_labels(batch: int, label_classes: int):
  """The null label (= label_classes) for a batch: (batch,) int32."""
  return jnp.full((batch,), label_classes, jnp.int32)


def add_class_embedding(temb, class_labels, label_classes: int):
  """temb (B, E) + Embed(label_classes + 1, E)(class_labels (B,) int; None: the null label).

  label_classes 0 (an unconditional network) returns temb unchanged and adds no parameters.
  Call from inside a compact module: the embedding becomes its submodule 'class_embed'.
  """
  if not label_classes:
    return temb
  if temb is None:
    raise ArgumentError("conditional", "A class-conditional network (label_classes > 0) needs "
                        "the noise embedding too: set {arg}=True.")
  if class_labels is None:
    class_labels = null_labels(temb.shape[0], label_classes)
  embed = nn.Embed(label_classes + 1, temb.shape[-1], name="class_embed")
  return temb + embed(class_labels.astype(jnp.int32))
