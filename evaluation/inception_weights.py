"""Weights of the FID Inception: find the file, read it, map torch's state dict onto flax.

The weights are pytorch-fid's port of TF's 2015-12-05 Inception (`WEIGHTS_URL`). Nothing is
downloaded: the file is looked for, in order, at the path given, then in the cache directory
(`evaluation.cache.cache_dir()`) as the safetensors file `scripts/convert_inception_weights.py`
writes or as the original .pth, then where pytorch-fid itself downloads it (torch hub's
checkpoint directory). A .pth is read with `torch.load(weights_only=True)` (no unpickling of
arbitrary objects); torch is imported only then. A .safetensors file needs no torch.
"""
import os
import pathlib
from typing import Callable, Mapping

import flax
import numpy as np

from configs.errors import MissingFileArgumentError, UserError, UserKeyError
from evaluation import cache, inception

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
SAFETENSORS_NAME = "pt_inception-2015-12-05-6726825d.safetensors"

# torch key suffix -> (flax collection, flax leaf name, array transform)
_LEAF_RULES = {
    "conv.weight": ("params", "kernel", lambda w: w.transpose(2, 3, 1, 0)),  # OIHW -> HWIO
    "bn.weight": ("params", "scale", lambda w: w),
    "bn.bias": ("params", "bias", lambda w: w),
    "bn.running_mean": ("batch_stats", "mean", lambda w: w),
    "bn.running_var": ("batch_stats", "var", lambda w: w),
    "fc.weight": ("params", "kernel", lambda w: w.T),  # (out, in) -> (in, out)
    "fc.bias": ("params", "bias", lambda w: w),
}
# BatchNorm's count of training steps: no effect at inference, consumed and dropped on purpose.
_IGNORED_SUFFIX = "bn.num_batches_tracked"


def torch_home_checkpoints() -> pathlib.Path:
  """Where torch hub (hence pytorch-fid) saves downloaded weights."""
  torch_home = os.environ.get("TORCH_HOME", pathlib.Path.home() / ".cache" / "torch")
  return pathlib.Path(torch_home) / "hub" / "checkpoints"


def candidate_paths() -> list[pathlib.Path]:
  return [cache.cache_dir() / SAFETENSORS_NAME, cache.cache_dir() / PTH_NAME,
          torch_home_checkpoints() / PTH_NAME]


def find_weights(path=None) -> pathlib.Path:
  """The weights file: `path` if given, else the first of `candidate_paths()` that exists."""
  paths = [pathlib.Path(path)] if path else candidate_paths()
  for p in paths:
    if p.is_file():
      return p
  message = (f"{{arg}}={str(path)!r} is not a file; set {{arg}} to a .pth or .safetensors file."
             if path else "FID Inception weights not found: set {arg} to a .pth or .safetensors "
             f"file, or put {PTH_NAME} in {cache.cache_dir()}.")
  raise MissingFileArgumentError(
      "path", message,
      detail=f"Looked at: {', '.join(map(str, paths))}. Nothing is downloaded at run time: "
      f"download {WEIGHTS_URL} where there is network access and put it at "
      f"{cache.cache_dir() / PTH_NAME} (the directory is ${cache.CACHE_ENV} if set), or pass its "
      "path; optionally convert it once to safetensors with "
      "`python scripts/convert_inception_weights.py`, so that reading it needs no torch.")


def read_state_dict(path) -> dict[str, np.ndarray]:
  """torch state dict {key: array} from a .pth (torch, weights_only) or .safetensors file."""
  path = pathlib.Path(path)
  if path.suffix == ".safetensors":
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return load_file(str(path))
  if path.suffix == ".pth":
    import torch  # pylint: disable=g-import-not-at-top  # optional: only for .pth files
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {key: value.numpy() for key, value in state.items()}
  raise UserError(f"{path}: expected a .pth or .safetensors file.")


def _flax_path(key: str) -> tuple[str, tuple[str, ...], Callable]:
  """'Mixed_5b.branch1x1.conv.weight' -> ('params', ('Mixed_5b', 'branch1x1', 'conv', 'kernel'),
  the array transform)."""
  for suffix, (collection, leaf, transform) in _LEAF_RULES.items():
    if key == suffix or key.endswith("." + suffix):
      modules = key[:-len(suffix)].split(".")[:-1] + [suffix.split(".")[0]]
      return collection, tuple(modules) + (leaf,), transform
  raise UserKeyError(f"torch key {key!r} has no flax counterpart (known suffixes: "
                 f"{sorted(_LEAF_RULES)}, ignored: {_IGNORED_SUFFIX}).")


def torch_to_flax_variables(state_dict: Mapping[str, np.ndarray]) -> dict:
  """pytorch-fid's Inception state dict -> flax variables {'params', 'batch_stats'} (float32).

  Every tensor is consumed: each key maps to its own flax variable or is a BatchNorm step
  counter (an unknown key raises). Every flax variable is set with the shape the network
  expects (a missing or misshapen one raises).
  """
  flat = {}
  for key, value in state_dict.items():
    if key.endswith(_IGNORED_SUFFIX):
      continue
    collection, path, transform = _flax_path(key)
    if (collection,) + path in flat:
      raise ValueError(f"torch key {key!r} maps onto a flax variable already set.")
    flat[(collection,) + path] = np.ascontiguousarray(transform(np.asarray(value, np.float32)))
  _check_same_leaves(flat, flax.traverse_util.flatten_dict(inception.abstract_variables()))
  return flax.traverse_util.unflatten_dict(flat)


def _check_same_leaves(flat: dict, expected: dict) -> None:
  missing, unexpected = set(expected) - set(flat), set(flat) - set(expected)
  if missing or unexpected:
    raise UserError(f"state dict does not fit the FID Inception: missing {sorted(missing)[:5]} "
                     f"({len(missing)}), unexpected {sorted(unexpected)[:5]} ({len(unexpected)}).")
  for path, abstract in expected.items():
    if flat[path].shape != abstract.shape:
      raise UserError(f"{'/'.join(path)}: shape {flat[path].shape}, expected {abstract.shape}.")


def load_inception_variables(path=None) -> dict:
  """Flax variables of the FID Inception from the weights file (`find_weights(path)`)."""
  return torch_to_flax_variables(read_state_dict(find_weights(path)))
