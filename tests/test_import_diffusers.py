"""--mode=import of diffusers NCSN++ weights: a randomly initialised UNet2DModel in the layout of
the google/ncsnpp-* models, converted, gives the score torch gives at two sizes; layouts NCSN++
cannot reproduce, a config that does not match, and older weight names."""
import importlib.util
import json
import math
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch_reference
from checkpoint_import import diffusers_ncsnpp
from configs import load_config
from parallel import DataParallel
from workflows import build
from workflows.import_released import import_checkpoint

torch = pytest.importorskip("torch")
if importlib.util.find_spec("diffusers") is None:
  pytest.skip("diffusers is not installed (the `test` extra)", allow_module_level=True)
diffusers = torch_reference.import_beside_cpu_torch("diffusers")
CONFIG = "configs/ve/ncsnpp_celebahq_256_continuous.py"  # google/ncsnpp-celebahq-256's
SKIP_DOWN, ATTN_DOWN, SKIP_UP, ATTN_UP = ("SkipDownBlock2D", "AttnSkipDownBlock2D",
                                          "SkipUpBlock2D", "AttnSkipUpBlock2D")
# name -> (UNet2DModel sizes, our config overrides for them, saved as a pipeline?)
SIZES = {
    "16px": (dict(sample_size=16, block_out_channels=(32, 128), layers_per_block=1,
                  down_block_types=(SKIP_DOWN, ATTN_DOWN), up_block_types=(ATTN_UP, SKIP_UP)),
             {"model.nf": 32, "model.ch_mult": (1, 4), "model.num_res_blocks": 1,
              "model.attn_resolutions": (8,), "data.image_size": 16}, True),
    "32px": (dict(sample_size=32, block_out_channels=(16, 32, 128), layers_per_block=2,
                  down_block_types=(SKIP_DOWN, SKIP_DOWN, ATTN_DOWN),
                  up_block_types=(ATTN_UP, SKIP_UP, SKIP_UP)),
             {"model.nf": 16, "model.ch_mult": (1, 2, 8), "model.num_res_blocks": 2,
              "model.attn_resolutions": (8,), "data.image_size": 32}, False),
}
TIMES = np.asarray([0.02, 0.3, 0.65, 0.97], np.float32)


def ncsnpp_unet(seed: int, **sizes):
  """A UNet2DModel configured as google/ncsnpp-* (sizes aside), every weight random."""
  torch.manual_seed(seed)
  model = diffusers.UNet2DModel(
      in_channels=3, out_channels=3, time_embedding_type="fourier", center_input_sample=True,
      mid_block_scale_factor=math.sqrt(2.0), norm_eps=1e-6, norm_num_groups=None,
      attention_head_dim=None, act_fn="silu", resnet_time_scale_shift="default",
      downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, **sizes)
  with torch.no_grad():  # GroupNorms start at (1, 0): make them tell one norm from another.
    for name, p in model.named_parameters():
      if "norm" in name:
        p.add_(0.3 * torch.randn_like(p))
  return model.eval()


def save(model, folder, as_pipeline: bool, sigma_max: float = 348.0):
  """A ScoreSdeVePipeline folder (safetensors), or the bare UNet as a torch .bin."""
  if as_pipeline:
    scheduler = diffusers.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=sigma_max)
    diffusers.ScoreSdeVePipeline(unet=model, scheduler=scheduler).save_pretrained(folder)
  else:
    model.save_pretrained(folder, safe_serialization=False)
  return folder


def config_for(path, overrides):
  return load_config(CONFIG, {**overrides, "eval.import_path": str(path)})


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """size -> (torch model, config, workdir imported through --mode=import's function)."""
  result = {}
  for seed, (name, (sizes, overrides, as_pipeline)) in enumerate(sorted(SIZES.items())):
    root = tmp_path_factory.mktemp(name)
    model = ncsnpp_unet(seed, **sizes)
    config = config_for(save(model, root / "diffusers", as_pipeline), overrides)
    import_checkpoint(config, root / "workdir")
    result[name] = (model, config, root / "workdir")
  return result


@pytest.mark.parametrize("name", sorted(SIZES))
def test_converted_model_gives_the_torch_score(converted, name):
  model, config, workdir = converted[name]
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model,
                                   DataParallel.over_all_devices().replicated)
  sigmas = np.array(sde.marginal_coeffs(jnp.asarray(TIMES))[1])
  rng = np.random.default_rng(0)
  size = config.data.image_size
  x = (rng.uniform(size=(4, size, size, 3)) + sigmas[:, None, None, None]
       * rng.standard_normal((4, size, size, 3))).astype(np.float32)
  with torch.no_grad():  # ScoreSdeVePipeline's call: unet(x, sigma) is the score at sigma.
    expected = model(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(sigmas)).sample
  expected = expected.numpy().transpose(0, 2, 3, 1)
  ours = np.asarray(jax.jit(score_model.score)(params, jnp.asarray(x), jnp.asarray(TIMES)))
  rms = np.sqrt(np.mean(np.square(expected), axis=(1, 2, 3), keepdims=True))
  np.testing.assert_array_less(np.abs(ours - expected), 1e-4 * (np.abs(expected) + rms))


def test_config_that_differs_gets_every_flag_to_add(converted, tmp_path):
  _, config, _ = converted["16px"]
  wrong = config_for(config.eval.import_path, {**SIZES["16px"][1], "model.nf": 16,
                                                "model.ch_mult": (1, 8), "sde.sigma_max": 50.0})
  with pytest.raises(ValueError) as err:
    import_checkpoint(wrong, tmp_path / "wd")
  for flag in ("--config.model.nf=32", '--config.model.ch_mult="(1, 4)"',
               "--config.sde.sigma_max=348.0"):
    assert flag in str(err.value)
  assert "model.attn_resolutions" not in str(err.value)
  assert not (tmp_path / "wd").exists()


@pytest.mark.parametrize("key,value", [
    ("attention_head_dim", 8), ("norm_num_groups", 32), ("resnet_time_scale_shift", "scale_shift"),
    ("block_out_channels", [32, 64]), ("time_embedding_type", "positional"),
    ("up_block_types", [SKIP_UP, ATTN_UP]), ("mid_block_scale_factor", 1.0)])
def test_layouts_ncsnpp_cannot_reproduce_are_rejected(converted, key, value):
  folder = converted["16px"][1].eval.import_path
  unet, _, _ = diffusers_ncsnpp.read_model(folder)
  diffusers_ncsnpp.check_layout(unet, folder)
  with pytest.raises(ValueError, match=re.escape(f"{key}={value!r}")):
    diffusers_ncsnpp.check_layout({**unet, key: value}, folder)


def test_weights_under_their_2022_names_convert_alike(converted):
  """The google/ncsnpp-* files were converted in 2022: attention query/key/value/proj_attn."""
  unet, weights, _ = diffusers_ncsnpp.read_model(converted["16px"][1].eval.import_path)
  old_names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
  renamed = {}
  for name, value in weights.items():
    for new, old in old_names.items():
      name = name.replace(f".{new}.", f".{old}.")
    renamed[name] = value
  assert renamed.keys() != weights.keys()
  jax.tree.map(np.testing.assert_array_equal, diffusers_ncsnpp.convert_weights(unet, renamed),
               diffusers_ncsnpp.convert_weights(unet, weights))


def test_scheduler_sigma_range_of_a_bare_model_folder_is_read(converted, tmp_path):
  folder = shutil.copytree(converted["32px"][1].eval.import_path, tmp_path / "model")
  (folder / "scheduler_config.json").write_text(json.dumps({"sigma_min": 0.01,
                                                            "sigma_max": 1348.0}))
  with pytest.raises(ValueError, match="--config.sde.sigma_max=1348.0"):
    import_checkpoint(config_for(folder, SIZES["32px"][1]), tmp_path / "wd")
