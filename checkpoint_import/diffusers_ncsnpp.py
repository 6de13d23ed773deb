"""diffusers' NCSN++ (`UNet2DModel` with Skip blocks, as the `google/ncsnpp-*` models of
`ScoreSdeVePipeline`) -> the parameters of our `ncsnpp` network, and the config it needs.

| diffusers model (hub)        | our config                                     |
|---|---|
| `google/ncsnpp-celebahq-256` | `configs/ve/ncsnpp_celebahq_256_continuous.py` |
| `google/ncsnpp-church-256`   | `configs/ve/ncsnpp_church_continuous.py`       |
| `google/ncsnpp-bedroom-256`  | `configs/ve/ncsnpp_bedroom_continuous.py`      |
| `google/ncsnpp-ffhq-256`     | `configs/ve/ncsnpp_ffhq_256_continuous.py`     |
| `google/ncsnpp-ffhq-1024`    | `configs/ve/ncsnpp_ffhq_1024_continuous.py`    |

`required_config` derives the config values a model needs from its config.json (and the SDE's
sigma range from scheduler_config.json when present); an import checks them and names every
flag to change, so any UNet2DModel in this layout imports with the matching overrides.

Output scaling. For time_embedding_type='fourier', `UNet2DModel(x, sigma)` divides its last
layer by the timestep it is given; ScoreSdeVePipeline gives it sigma and uses the result as the
score. So diffusers(x, sigma) = F(x, sigma) / sigma with F our network's output (which never
divides), and our `ve_continuous` parameterisation with scale_by_sigma=True computes exactly
score(x, t) = F(x, sigma(t)) / sigma(t) with c_noise = sigma(t): diffusers(x, sigma(t)) is
our score at t. center_input_sample=True maps [0, 1] data to 2x - 1, as our data.centered=False.

Layout. Modules are visited in the order NCSNpp creates them (flax numbers each type in that
order): time_proj, time_embedding.linear_{1,2}, conv_in; per down block its resnets (and
attentions), resnet_down, skip_conv (our Combine); the mid block; per up block its resnets,
attention, skip_norm, skip_conv, resnet_up; conv_norm_out, conv_out. Torch conv weights
(out, in, kh, kw) become (kh, kw, in, out), Linear weights (out, in) become (in, out).

Only what our NCSN++ reproduces exactly is accepted (`check_layout`): diffusers' Skip-block
attention normalises with 32 groups where NCSN++ uses min(C // 4, 32), so attention needs
C >= 128 channels (256 in the hub models); single-head attention; GroupNorm eps 1e-6.
"""
import importlib
import json
import math
import pathlib

import numpy as np

from configs.errors import MissingFileError, UserError, UserKeyError

SKIP_DOWN, ATTN_DOWN = "SkipDownBlock2D", "AttnSkipDownBlock2D"
SKIP_UP, ATTN_UP = "SkipUpBlock2D", "AttnSkipUpBlock2D"
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# UNet2DModel's defaults (diffusers 0.42.1) for keys an older config.json may leave out.
UNET_DEFAULTS = {"sample_size": None, "block_out_channels": [224, 448, 672, 896],
                 "down_block_types": ["DownBlock2D"] + ["AttnDownBlock2D"] * 3,
                 "up_block_types": ["AttnUpBlock2D"] * 3 + ["UpBlock2D"], "in_channels": 3, "out_channels": 3, "center_input_sample": False,
                 "time_embedding_type": "positional", "time_embedding_dim": None,
                 "mid_block_type": "UNetMidBlock2D", "layers_per_block": 2,
                 "mid_block_scale_factor": 1.0, "act_fn": "silu", "attention_head_dim": 8,
                 "norm_num_groups": 32, "norm_eps": 1e-5, "resnet_time_scale_shift": "default",
                 "add_attention": True, "class_embed_type": None, "num_class_embeds": None}


# --- files ---------------------------------------------------------------------------------

def _model_dir(path: pathlib.Path) -> pathlib.Path:
  """The folder with the UNet's config.json: `path` itself or a pipeline's `unet/`."""
  for folder in (path / "unet", path):
    if (folder / "config.json").is_file():
      return folder
  raise MissingFileError(f"No diffusers model in {path}: expected config.json and "
                          f"{' or '.join(WEIGHT_FILES)} there or in {path / 'unet'}.")


def _require(module: str, package: str):
  """Imports an optional reader, or says how to install it."""
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as err:
    raise UserError(f"Reading these diffusers weights needs {package}: pip install "
                              f"'{package}'.") from err


def _read_weights(folder: pathlib.Path) -> dict:
  """name -> float32 numpy array, from safetensors or (without unpickling) a torch .bin."""
  safetensors_file, bin_file = (folder / name for name in WEIGHT_FILES)
  if safetensors_file.is_file():
    weights = _require("safetensors.numpy", "safetensors==0.8.0").load_file(safetensors_file)
  elif bin_file.is_file():
    torch = _require("torch", "torch==2.13.0")
    weights = {k: v.float().numpy() for k, v in
               torch.load(bin_file, map_location="cpu", weights_only=True).items()}
  else:
    raise MissingFileError(f"No weights in {folder}: expected one of {list(WEIGHT_FILES)}.")
  return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def read_model(path):
  """(UNet config with defaults filled, weights {name: array}, scheduler config or None)."""
  path = pathlib.Path(path)
  folder = _model_dir(path)
  unet = {**UNET_DEFAULTS, **json.loads((folder / "config.json").read_text())}
  scheduler = None
  for candidate in (path / "scheduler" / "scheduler_config.json", path / "scheduler_config.json"):
    if candidate.is_file():
      scheduler = json.loads(candidate.read_text())
      break
  return unet, _read_weights(folder), scheduler


# --- what the model is ---------------------------------------------------------------------

def _layout_problems(unet: dict):
  """(key, value, what NCSN++ needs) for every setting our network cannot reproduce."""
  channels, down, up = unet["block_out_channels"], unet["down_block_types"], unet["up_block_types"]
  attn_channels = [c for c, kind in zip(channels, down) if kind == ATTN_DOWN]
  size = unet.get("sample_size")
  checks = [
      ("sample_size", isinstance(size, int) or (isinstance(size, list) and len(set(size)) == 1),
       "the (square) image size"),
      ("_class_name", unet.get("_class_name", "UNet2DModel") == "UNet2DModel", "UNet2DModel"),
      ("time_embedding_type", unet["time_embedding_type"] == "fourier", "'fourier'"),
      ("down_block_types", set(down) <= {SKIP_DOWN, ATTN_DOWN} and len(down) == len(channels),
       f"{SKIP_DOWN} / {ATTN_DOWN}, one per block_out_channels"),
      ("up_block_types", [k == ATTN_UP for k in up] == [k == ATTN_DOWN for k in down[::-1]]
       and set(up) <= {SKIP_UP, ATTN_UP}, "the down blocks mirrored, with Up for Down"),
      ("block_out_channels", all(c % channels[0] == 0 for c in channels),
       "multiples of the first"),
      ("block_out_channels", all(c >= 128 for c in attn_channels),
       ">= 128 where there is attention (diffusers: 32 groups there, NCSN++: min(C // 4, 32))"),
      ("mid_block_type", unet["mid_block_type"] == "UNetMidBlock2D" and unet["add_attention"],
       "'UNetMidBlock2D' with attention"),
      ("mid_block_scale_factor", math.isclose(unet["mid_block_scale_factor"], math.sqrt(2)),
       "sqrt(2) (skip_rescale)"),
      ("attention_head_dim", unet["attention_head_dim"] is None, "null (one head)"),
      ("norm_num_groups", unet["norm_num_groups"] is None, "null (min(C // 4, 32) groups)"),
      ("norm_eps", unet["norm_eps"] == 1e-6, "1e-6"),
      ("resnet_time_scale_shift", unet["resnet_time_scale_shift"] == "default", "'default'"),
      ("act_fn", unet["act_fn"] in ("silu", "swish"), "'silu'"),
      ("in_channels", unet["in_channels"] == unet["out_channels"] == 3,
       "3 = out_channels (Skip blocks are RGB)"),
      ("time_embedding_dim", unet["time_embedding_dim"] in (None, 4 * channels[0]),
       "null (4 * block_out_channels[0])"),
      ("class_embed_type", unet["class_embed_type"] is None and unet["num_class_embeds"] is None,
       "null (unconditional)"),
  ]
  return [(key, unet.get(key), need) for key, ok, need in checks if not ok]


def check_layout(unet: dict, source: str) -> None:
  problems = _layout_problems(unet)
  if problems:
    listed = "; ".join(f"{key}={value!r} (needs {need})" for key, value, need in problems)
    raise UserError(f"{source} is not an NCSN++ UNet2DModel our `ncsnpp` network reproduces: "
                     f"{listed}")


def required_config(unet: dict, scheduler: dict | None = None) -> dict:
  """The config values ({dotted key: value}) under which our NCSN++ is this diffusers model."""
  channels, size = unet["block_out_channels"], unet["sample_size"]
  size, nf = size if isinstance(size, int) else size[0], channels[0]
  required = {
      "model.name": "ncsnpp", "model.nf": nf, "model.ch_mult": tuple(c // nf for c in channels),
      "model.num_res_blocks": unet["layers_per_block"],
      "model.attn_resolutions": tuple(size >> i for i, kind in
                                      enumerate(unet["down_block_types"]) if kind == ATTN_DOWN),
      "model.resblock_type": "biggan", "model.progressive": "output_skip",
      "model.progressive_input": "input_skip", "model.progressive_combine": "sum",
      "model.fir": True, "model.fir_kernel": (1, 3, 3, 1), "model.skip_rescale": True,
      "model.embedding_type": "fourier", "model.fourier_scale": 16.0, "model.conditional": True,
      "model.nonlinearity": "swish", "model.scale_by_sigma": True, "sde.name": "vesde",
      "training.continuous": True, "data.image_size": size, "data.num_channels": 3,
      "data.centered": not unet["center_input_sample"],
  }
  if scheduler is not None:
    required.update({"sde.sigma_min": scheduler["sigma_min"],
                     "sde.sigma_max": scheduler["sigma_max"]})
  return required


# --- weights -------------------------------------------------------------------------------

def _modules(unet: dict):
  """(our module type, diffusers prefix) in the order NCSNpp creates its modules."""
  last = len(unet["block_out_channels"]) - 1
  yield "GaussianFourierProjection", "time_proj"
  yield "Dense", "time_embedding.linear_1"
  yield "Dense", "time_embedding.linear_2"
  yield "Conv", "conv_in"
  for i, kind in enumerate(unet["down_block_types"]):
    for j in range(unet["layers_per_block"]):
      yield "ResnetBlockBigGANpp", f"down_blocks.{i}.resnets.{j}"
      if kind == ATTN_DOWN:
        yield "AttnBlockpp", f"down_blocks.{i}.attentions.{j}"
    if i != last:
      yield "ResnetBlockBigGANpp", f"down_blocks.{i}.resnet_down"
      yield "Combine", f"down_blocks.{i}.skip_conv"
  yield "ResnetBlockBigGANpp", "mid_block.resnets.0"
  yield "AttnBlockpp", "mid_block.attentions.0"
  yield "ResnetBlockBigGANpp", "mid_block.resnets.1"
  for i, kind in enumerate(unet["up_block_types"]):
    for j in range(unet["layers_per_block"] + 1):
      yield "ResnetBlockBigGANpp", f"up_blocks.{i}.resnets.{j}"
    if kind == ATTN_UP:
      yield "AttnBlockpp", f"up_blocks.{i}.attentions.0"
    if i != last:
      yield "GroupNorm", f"up_blocks.{i}.skip_norm"
      yield "Conv", f"up_blocks.{i}.skip_conv"
      yield "ResnetBlockBigGANpp", f"up_blocks.{i}.resnet_up"
  yield "GroupNorm", "conv_norm_out"
  yield "Conv", "conv_out"


class _Weights:
  """The state dict, consumed name by name so that leftovers can be reported."""

  def __init__(self, weights: dict):
    self._weights = dict(weights)

  def has(self, name: str) -> bool:
    return name in self._weights

  def take(self, *names: str) -> np.ndarray:
    """The first of `names` present (newer diffusers names first, then older ones)."""
    for name in names:
      if name in self._weights:
        return self._weights.pop(name)
    raise UserKeyError(f"The diffusers weights have no {' / '.join(names)}.")

  def leftover(self) -> list:
    return sorted(self._weights)


def _conv(w: _Weights, prefix: str) -> dict:
  return {"kernel": np.transpose(w.take(f"{prefix}.weight"), (2, 3, 1, 0)),
          "bias": w.take(f"{prefix}.bias")}


def _dense(w: _Weights, prefix: str) -> dict:
  return {"kernel": w.take(f"{prefix}.weight").T, "bias": w.take(f"{prefix}.bias")}


def _norm(w: _Weights, prefix: str) -> dict:
  return {"scale": w.take(f"{prefix}.weight"), "bias": w.take(f"{prefix}.bias")}


def _resnet(w: _Weights, prefix: str) -> dict:
  block = {"GroupNorm_0": _norm(w, f"{prefix}.norm1"), "Conv_0": _conv(w, f"{prefix}.conv1"),
           "Dense_0": _dense(w, f"{prefix}.time_emb_proj"),
           "GroupNorm_1": _norm(w, f"{prefix}.norm2"), "Conv_1": _conv(w, f"{prefix}.conv2")}
  if w.has(f"{prefix}.conv_shortcut.weight"):
    block["Conv_2"] = _conv(w, f"{prefix}.conv_shortcut")
  return block


def _attention(w: _Weights, prefix: str) -> dict:
  """NIN_0..3 = q, k, v, out (diffusers' current names, then those of its 2022 conversion)."""
  names = (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn"))
  block = {"GroupNorm_0": _norm(w, f"{prefix}.group_norm")}
  for i, (new, old) in enumerate(names):
    block[f"NIN_{i}"] = {"W": w.take(f"{prefix}.{new}.weight", f"{prefix}.{old}.weight").T,
                         "b": w.take(f"{prefix}.{new}.bias", f"{prefix}.{old}.bias")}
  return block


_CONVERTERS = {
    "GaussianFourierProjection": lambda w, p: {"W": w.take(f"{p}.weight", f"{p}.W")},
    "Dense": _dense, "Conv": _conv, "GroupNorm": _norm, "ResnetBlockBigGANpp": _resnet,
    "AttnBlockpp": _attention, "Combine": lambda w, p: {"Conv_0": _conv(w, p)},
}


def convert_weights(unet: dict, weights: dict) -> dict:
  """diffusers weights {name: array} -> our NCSNpp param tree (check_layout(unet) first)."""
  w, params, counts = _Weights(weights), {}, {}
  for kind, prefix in _modules(unet):
    index = counts[kind] = counts.get(kind, -1) + 1
    params[f"{kind}_{index}"] = _CONVERTERS[kind](w, prefix)
  if w.leftover():
    raise UserError(f"diffusers weights without a place in NCSN++: {w.leftover()[:5]} "
                     f"({len(w.leftover())} in all); not the Skip-block layout.")
  return params
