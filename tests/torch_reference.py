"""pytorch-fid's own Inception with random weights, built offline: the reference that tests and
benchmarks compare `evaluation.inception` against (`import torch_reference` with tests/ on the
path). Needs the `test` or `bench` extra (torch, torchvision, pytorch-fid).

`random_pytorch_fid_inception` runs pytorch-fid's `fid_inception_v3` unchanged except for its
download: `load_state_dict_from_url` returns a random state dict with every key and shape of the
network just built (conv weights He-scaled, BatchNorm scales, shifts and running statistics away
from their defaults), which the network then loads strictly.
"""
import importlib
import importlib.util
import pathlib
from unittest import mock

import numpy as np
import torch


def _torchvision_extension_loads() -> bool:
  spec = importlib.util.find_spec("torchvision")
  if spec is None:
    raise ImportError("torchvision is not installed; install the `test` or `bench` extra.")
  extension = next(pathlib.Path(spec.origin).parent.glob("_C*.so"), None)
  if extension is None:
    return False
  try:
    torch.ops.load_library(str(extension))
  except OSError:
    return False
  return True


def _define_missing_torchvision_ops() -> None:
  """Lets `import torchvision` work next to a CPU torch when its C++ ops cannot load.

  PyPI's torchvision 0.28.0 is built for CUDA (0.28.0+cu130); beside torch 2.13.0+cpu its `_C`
  extension fails to load, and the import then fails on the only two fake-op registrations it
  makes unconditionally (nms, qnms). Defining their schemas first lets it finish; neither
  pytorch-fid's Inception nor diffusers' UNet uses torchvision's C++ ops.
  """
  if not hasattr(torch.ops.torchvision, "nms") and not _torchvision_extension_loads():
    for op in ("nms", "qnms"):
      torch.library.define(f"torchvision::{op}",
                           "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def import_beside_cpu_torch(name: str):
  """The module `name` (e.g. 'pytorch_fid.inception', 'diffusers'), which imports torchvision,
  importable beside a CPU torch."""
  _define_missing_torchvision_ops()
  return importlib.import_module(name)


def pytorch_fid_module(name: str):
  """The module `pytorch_fid.<name>` ('inception', 'fid_score')."""
  return import_beside_cpu_torch(f"pytorch_fid.{name}")


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
  """A state dict for `model` with seeded random values: He-scaled convs, BatchNorm scales,
  shifts and running statistics away from their defaults (1, 0, 0, 1)."""
  g = torch.Generator().manual_seed(seed)
  normal, uniform = (lambda s: torch.randn(s, generator=g)), (lambda s: torch.rand(s, generator=g))
  samplers = {
      "conv.weight": lambda s: normal(s) * (2.0 / s[1:].numel()) ** 0.5,
      "bn.weight": lambda s: 0.5 + uniform(s),
      "bn.bias": lambda s: 0.2 * normal(s),
      "bn.running_mean": lambda s: 0.2 * normal(s),
      "bn.running_var": lambda s: 0.5 + 1.5 * uniform(s),
      "bn.num_batches_tracked": lambda s: torch.tensor(1000 + seed),
      "fc.weight": lambda s: normal(s) / s[1] ** 0.5,
      "fc.bias": normal,
  }
  return {key: samplers[".".join(key.split(".")[-2:])](value.shape)
          for key, value in model.state_dict().items()}


def random_pytorch_fid_inception(seed: int = 0):
  """(inception3, wrapper): pytorch-fid's network with random weights (eval mode).

  `wrapper` is `pytorch_fid.inception.InceptionV3([3])` (resize to 299, [0,1] -> [-1,1], pool
  features); `inception3` is the torchvision `Inception3` it wraps, whose `fc` is the 1008 head.
  """
  pfi = pytorch_fid_module("inception")
  built = []

  def record(*args, **kwargs):
    built.append(original(*args, **kwargs))
    return built[-1]

  original = pfi._inception_v3  # pylint: disable=protected-access
  with mock.patch.object(pfi, "_inception_v3", record), mock.patch.object(
      pfi, "load_state_dict_from_url", lambda *a, **k: random_state_dict(built[-1], seed)):
    wrapper = pfi.InceptionV3([3])
  return built[0].eval(), wrapper.eval()


def state_dict_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
  return {key: value.numpy() for key, value in model.state_dict().items()}


def nhwc_to_torch(images: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def torch_outputs(inception3, wrapper, images_unit: np.ndarray) -> tuple[np.ndarray, ...]:
  """(pool (B, 2048), logits (B, 1008), logits_unbiased (B, 1008)) for images (B, H, W, 3) in
  [0, 1], computed by pytorch-fid's network."""
  with torch.no_grad():
    pool = wrapper(nhwc_to_torch(images_unit))[0].flatten(1)
    return (pool.numpy(), inception3.fc(pool).numpy(), (pool @ inception3.fc.weight.T).numpy())
