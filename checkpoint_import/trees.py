"""Checks that imported parameters fit the tree a config builds; errors say what to change.

Trees are nested dicts {module: {param: array}} as flax builds them; shapes are compared path by
path in natural order (ResnetBlock_2 before ResnetBlock_10).
"""
import math
import re

import flax.traverse_util as traverse_util

from training.checkpoints import CheckpointMismatchError


def _natural_key(path: tuple) -> list:
  return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", "/".join(path))]


def first_difference(actual: dict, expected: dict):
  """(path, actual shape or None, expected shape or None) of the first differing leaf, or None.

  actual, expected: param trees of arrays or ShapeDtypeStructs; a missing leaf has shape None.
  """
  flat_a, flat_e = traverse_util.flatten_dict(actual), traverse_util.flatten_dict(expected)
  for path in sorted(flat_a.keys() | flat_e.keys(), key=_natural_key):
    shape_a = tuple(flat_a[path].shape) if path in flat_a else None
    shape_e = tuple(flat_e[path].shape) if path in flat_e else None
    if shape_a != shape_e:
      return "/".join(path), shape_a, shape_e
  return None


def describe_network(params: dict) -> dict:
  """What a param tree says about its config: block type and count, nf, embedding, size."""
  residual = sorted({name.rsplit("_", 1)[0] for name in params
                     if "Resnet" in name or "ResidualBlock" in name})
  conv = params.get("Conv_0", {}).get("kernel")
  return {"blocks": "/".join(residual) or "none",
          "residual blocks": sum(1 for n in params if "Resnet" in n or "ResidualBlock" in n),
          "nf": None if conv is None else conv.shape[-1],
          "embedding": "fourier" if "GaussianFourierProjection_0" in params else "positional/none",
          "parameters": sum(math.prod(leaf.shape)
                            for leaf in traverse_util.flatten_dict(params).values())}


def _advice(found: dict, built: dict) -> list:
  """[(short advice, long advice)] from describe_network of a checkpoint (found) and of the
  config's model (built)."""
  advice = []
  if found["blocks"] != built["blocks"]:
    advice.append((f"a config of the {found['blocks']} family (model.name, resblock_type)",
                   f"the checkpoint's network has {found['blocks']} blocks, the config's "
                   f"{built['blocks']}: use a config of its family (model.name, "
                   "model.resblock_type: NCSN++ 'biggan' vs DDPM++ 'ddpm')"))
  if found["nf"] != built["nf"]:
    advice.append((f"model.nf={found['nf']}",
                   f"nf is {found['nf']} in the checkpoint, {built['nf']} in the config: "
                   f"model.nf={found['nf']}"))
  if found["residual blocks"] != built["residual blocks"]:
    advice.append(("a 'deep' config or not (model.num_res_blocks)",
                   f"{found['residual blocks']} residual blocks in the checkpoint, "
                   f"{built['residual blocks']} in the config: a 'deep' config "
                   "(num_res_blocks=8) vs not (4), or model.num_res_blocks / ch_mult differ"))
  if found["embedding"] != built["embedding"]:
    advice.append((f"model.embedding_type ({found['embedding']})",
                   f"the checkpoint's noise embedding is {found['embedding']}, the config's "
                   f"{built['embedding']}: continuous VE NCSN++ configs (*_continuous) use "
                   "'fourier', discrete and VP ones 'positional' (model.embedding_type)"))
  return advice


def likely_config(found: dict, built: dict) -> str:
  """Advice from describe_network of a checkpoint (found) and of the config's model (built)."""
  summary = lambda d: ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                for k, v in d.items())
  return ("; ".join(long for _, long in _advice(found, built))
          or "the model options (model.*, data.image_size) differ"
          ) + f". Checkpoint: {summary(found)}. Config: {summary(built)}."


def check_fits(params: dict, expected: dict, source: str) -> None:
  """Raises CheckpointMismatchError naming the first differing path and both shapes, with the
  likely fix, on one short line (`source` without its folders); the whole advice and both
  networks' summaries go to the error's detail (--verbose)."""
  difference = first_difference(params, expected)
  if difference is None:
    return
  path, found, built = difference
  networks = describe_network(params), describe_network(expected)
  short = "; ".join(s for s, _ in _advice(*networks)) or "the model options (model.*) differ"
  label = re.sub(r"^\S*/", "", source)
  raise CheckpointMismatchError(
      f"{label} does not fit the config's model: first difference at {path}: checkpoint "
      f"{'missing' if found is None else found}, config {'missing' if built is None else built}. "
      f"Likely: {short}.",
      f"{source}: {likely_config(*networks)}")
