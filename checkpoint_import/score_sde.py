"""The released score_sde (JAX) checkpoints: a `checkpoint_N` file -> our TrainState.

The release (github yang-song/score_sde, flax.training.checkpoints) writes its `State` with
`flax.serialization.msgpack_serialize`: `step`, `optimizer` {`target` (training params),
`state` {`step`, `param_states` (per leaf {`grad_ema`, `grad_sq_ema`})}}, `params_ema`,
`model_state`, `lr`, `ema_rate`, `rng`. It is read with `msgpack_restore` (no pickle).

Parameter names: the identity. Our networks create their modules in the released order, so
flax auto-names them alike (`ResnetBlockBigGANpp_0`, `Conv_0`, `Dense_0`, `GroupNorm_0`,
`NIN_0`, `AttnBlockpp_0`, `RefineBlock_0`, ...) with the same shapes: NCSN++, DDPM++, DDPM and
NCSNv2 are checked key for key and output for output against checkpoints the released code
wrote (tests/test_import_score_sde.py). The mapping is therefore these checks plus:

  params_ema                       -> TrainState.ema_params (what sampling uses)
  optimizer.target                 -> TrainState.params
  param_states[...].grad_ema       -> ScaleByAdamState.mu   (flax.optim.Adam's first moment)
  param_states[...].grad_sq_ema    -> ScaleByAdamState.nu   (second moment)
  optimizer.state.step             -> every `count` of the optax state (Adam's bias correction
                                      and the warm-up schedule's position)
  step                             -> TrainState.step

flax.optim.Adam and optax.adam share the update (bias correction with step + 1, eps outside the
square root), and the released warm-up lr * min(step / warmup, 1) is optax's linear schedule
at `count`, so training continues where the release stopped.
"""
import dataclasses
import pathlib
import zipfile

import flax.serialization
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import optax.tree_utils

from checkpoint_import.trees import check_fits
from configs.errors import MissingFileError, UserError
from training.state import TrainState

# First bytes of files that are not the JAX release's checkpoints.
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive, numpy's .npz
_PICKLE_MAGIC = b"\x80"  # then the protocol (2-5): a legacy torch.save, or any pickle
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
FORMATS = ("an import takes a score_sde `checkpoint_N` file (msgpack) or a "
           "diffusers NCSN++ folder")


@dataclasses.dataclass(frozen=True)
class ReleasedState:
  """A released checkpoint's contents, as numpy trees keyed like our parameter trees."""

  step: int
  params: dict
  ema_params: dict
  grad_ema: dict
  grad_sq_ema: dict
  adam_step: int


def _not_a_checkpoint(path, why: str, detail: str = "") -> UserError:
  """One line naming the file (without its folders) and what it is; the path in `detail`."""
  return UserError(f"{pathlib.Path(path).name} is not a score_sde checkpoint ({why}); "
                   f"{FORMATS}.", f"File: {path}. {detail}".strip())


def _zip_kind(path: pathlib.Path) -> str:
  """What a zip archive holds: numpy arrays (.npz), a torch.save archive, or something else."""
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
  except (zipfile.BadZipFile, OSError):
    names = []
  if (names and all(n.endswith(".npy") for n in names)) or path.suffix == ".npz":
    return "an .npz archive of numpy arrays"
  if any(n.endswith("data.pkl") for n in names) or path.suffix in _TORCH_SUFFIXES:
    return "a PyTorch file, e.g. score_sde_pytorch's checkpoint_N.pth"
  return "a zip archive"


def _restore(path: pathlib.Path) -> dict:
  if not path.is_file():
    raise MissingFileError(
        f"No checkpoint file at {path}; {FORMATS}.",
        "Download a `checkpoint_N` file of the score_sde release (e.g. "
        "ve/cifar10_ncsnpp_continuous/checkpoints/checkpoint_24).")
  data = path.read_bytes()
  if data.startswith(_ZIP_MAGIC):
    raise _not_a_checkpoint(path, f"it is {_zip_kind(path)}")
  if data.startswith(_PICKLE_MAGIC) and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
    raise _not_a_checkpoint(path, "it is a pickle, e.g. a legacy PyTorch file")
  try:
    restored = flax.serialization.msgpack_restore(data)
  except (ValueError, TypeError) as err:
    raise _not_a_checkpoint(path, "not msgpack", f"{type(err).__name__}: {err}") from err
  if not isinstance(restored, dict):
    raise _not_a_checkpoint(path, f"it holds a {type(restored).__name__}, not a State dict")
  return restored


def _split_moments(param_states: dict):
  """{..., leaf: {grad_ema, grad_sq_ema}} -> (grad_ema tree, grad_sq_ema tree)."""
  flat = traverse_util.flatten_dict(param_states)
  moment = lambda name: traverse_util.unflatten_dict(
      {path[:-1]: value for path, value in flat.items() if path[-1] == name})
  return moment("grad_ema"), moment("grad_sq_ema")


def read_checkpoint(path) -> ReleasedState:
  """Reads a released `checkpoint_N` file; clear errors for a missing file or another format."""
  path = pathlib.Path(path)
  state = _restore(path)
  missing = [k for k in ("step", "optimizer", "params_ema") if k not in state]
  if missing:
    raise _not_a_checkpoint(path, f"no {missing} among its keys", f"Its keys: {sorted(state)}")
  if state.get("model_state"):
    raise _not_a_checkpoint(path, "it has model_state (batch statistics), which no released "
                            "score network keeps")
  optimizer = state["optimizer"]
  grad_ema, grad_sq_ema = _split_moments(optimizer["state"]["param_states"])
  return ReleasedState(step=int(state["step"]), params=optimizer["target"],
                       ema_params=state["params_ema"], grad_ema=grad_ema,
                       grad_sq_ema=grad_sq_ema, adam_step=int(optimizer["state"]["step"]))


def to_train_state(released: ReleasedState, abstract: TrainState, source: str) -> TrainState:
  """Our TrainState from a released one, after checking every tree against `abstract`
  (the ShapeDtypeStructs of the state the config builds: jax.eval_shape of its initialiser)."""
  trees = {"params_ema": released.ema_params, "optimizer.target": released.params,
           "grad_ema": released.grad_ema, "grad_sq_ema": released.grad_sq_ema}
  for name, tree in trees.items():
    check_fits(tree, abstract.params, f"{source} ({name})")
  cast = lambda tree: jax.tree.map(lambda x, s: jnp.asarray(x, s.dtype), tree, abstract.params)
  opt_state = optax.tree_utils.tree_set(
      abstract.opt_state, mu=cast(released.grad_ema), nu=cast(released.grad_sq_ema),
      count=jnp.asarray(released.adam_step, jnp.int32))
  unset = [leaf for leaf in jax.tree.leaves(opt_state) if isinstance(leaf, jax.ShapeDtypeStruct)]
  if unset:
    raise UserError(f"The config's optimizer has state the released Adam does not provide "
                     f"({len(unset)} leaves, e.g. {unset[0]}); import with optim.optimizer="
                     "'adam' as released.")
  return TrainState(step=jnp.asarray(released.step, jnp.int32), params=cast(released.params),
                    opt_state=opt_state, ema_params=cast(released.ema_params))
