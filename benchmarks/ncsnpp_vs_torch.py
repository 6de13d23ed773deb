"""NCSN++ (JAX/flax, this repo) vs diffusers' NCSN++-style UNet2DModel (torch).

  python benchmarks/ncsnpp_vs_torch.py --repeats 5 \
      --sizes 8:32:1,2:128 16:64:1,2,2:32 32:64:1,2,2,2:8

Each size is RES:NF:CH_MULT:BATCH. Both networks get the same batch (same
values; NHWC for JAX, NCHW for torch) and run on CPU with the same number of
threads. Timed per size, after two untimed warm-up calls (jit compilation):
  forward  -- jitted `apply` (train=False) / `model(x, sigma)` under no_grad;
  train    -- one step of a DSM loss, value_and_grad + optax Adam (jitted) /
              forward + backward + torch.optim.Adam.step().
Reported: median over --repeats rounds (`block_until_ready` on the JAX side);
each round calls every variant once, interleaved, so load drift hits all alike.
The 'fir=False' columns time our NCSN++ with naive (box / nearest) resampling
instead of FIR filters, to show what FIR costs; diffusers cannot express it.
OMP_WAIT_POLICY defaults to PASSIVE here: with libgomp's default spin-waiting,
torch's 2nd OpenMP thread starves the main thread whenever another process
holds a core (tiny ops then take ~5 ms); set OMP_WAIT_POLICY=ACTIVE to override.
Needs the `bench` extra: pip install torch==2.13.0 diffusers==0.42.1
"""
import argparse
import os
import pathlib
import sys

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # Before torch loads.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'tests'))  # torch_reference

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp
import numpy as np
import optax
import torch

import torch_reference
from timing import interleaved_seconds
from models.ncsnpp import NCSNpp

UNet2DModel = torch_reference.import_beside_cpu_torch("diffusers").UNet2DModel

CHANNELS = 3  # diffusers' Skip blocks hard-code 3 image channels.
LR = 2e-4


def parse_size(text):
  """'16:64:1,2,2:32' -> dict(res=16, nf=64, ch_mult=(1, 2, 2), batch=32)."""
  res, nf, mult, batch = text.split(':')
  return dict(res=int(res), nf=int(nf), batch=int(batch),
              ch_mult=tuple(int(m) for m in mult.split(',')))


def make_batch(size, seed=0):
  """Same data for both frameworks: x in [-1, 1], noise z, log-uniform sigma."""
  rng = np.random.default_rng(seed)
  shape = (size['batch'], size['res'], size['res'], CHANNELS)
  x = rng.uniform(-1., 1., shape).astype(np.float32)
  z = rng.standard_normal(shape).astype(np.float32)
  sigma = np.exp(rng.uniform(np.log(0.01), np.log(50.), size['batch']))
  return x, z, sigma.astype(np.float32)


# ---------------------------------------------------------------- JAX side --

def build_ours(size, args, fir=True):
  return NCSNpp(
      nf=size['nf'], ch_mult=size['ch_mult'],
      num_res_blocks=args.num_res_blocks, attn_resolutions=tuple(args.attn),
      dropout=args.dropout, fir=fir, fir_kernel=(1, 3, 3, 1),
      skip_rescale=True, resblock_type='biggan', progressive='output_skip',
      progressive_input='input_skip', progressive_combine='sum',
      embedding_type='fourier', fourier_scale=16., init_scale=0.,
      nonlinearity='swish', centered=True, conditional=True)


def dsm_loss_jax(model, params, x, z, sigma, key):
  """Denoising score matching: score(x + sigma z) * sigma should equal -z.

  Our NCSNpp output is not divided by sigma (the score wrapper does that), so
  score * sigma is the raw output.
  """
  s = sigma[:, None, None, None]
  out = model.apply(params, x + s * z, sigma, train=True,
                    rngs={'dropout': key})
  return jnp.mean(jnp.sum((out + z) ** 2, axis=(1, 2, 3)))


def ours_fns(size, args, batch, fir=True):
  """(n_params, forward fn, train-step fn) of our NCSN++."""
  x, z, sigma = (jnp.asarray(a) for a in batch)
  model = build_ours(size, args, fir)
  params = jax.jit(lambda k: model.init(k, x[:1], sigma[:1]))(
      jax.random.PRNGKey(0))
  n_params = sum(p.size for p in jax.tree_util.tree_leaves(params))
  opt = optax.adam(LR)
  forward = jax.jit(lambda p, x, s: model.apply(p, x, s, train=False))

  @jax.jit
  def step(params, opt_state, key, x, z, sigma):  # Data as args, not consts.
    key, sub = jax.random.split(key)
    loss, grads = jax.value_and_grad(
        lambda p: dsm_loss_jax(model, p, x, z, sigma, sub))(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, key, loss

  state = [params, opt.init(params), jax.random.PRNGKey(1)]

  def train_once():
    state[:] = step(*state, x, z, sigma)[:3]
    jax.block_until_ready(state)

  return (n_params, lambda: forward(params, x, sigma).block_until_ready(),
          train_once)


# -------------------------------------------------------------- torch side --

def build_torch(size, args):
  """diffusers UNet2DModel in its NCSN++ configuration (score_sde port)."""
  levels = len(size['ch_mult'])
  attn = [size['res'] // 2**i in args.attn for i in range(levels)]
  return UNet2DModel(
      sample_size=size['res'], in_channels=CHANNELS, out_channels=CHANNELS,
      center_input_sample=False, time_embedding_type='fourier',
      down_block_types=tuple('AttnSkipDownBlock2D' if a else 'SkipDownBlock2D'
                             for a in attn),
      up_block_types=tuple('AttnSkipUpBlock2D' if a else 'SkipUpBlock2D'
                           for a in reversed(attn)),
      block_out_channels=tuple(size['nf'] * m for m in size['ch_mult']),
      layers_per_block=args.num_res_blocks, mid_block_scale_factor=np.sqrt(2.),
      dropout=args.dropout, act_fn='silu', attention_head_dim=None,
      norm_num_groups=min(size['nf'] // 4, 32), norm_eps=1e-6,
      resnet_time_scale_shift='default', add_attention=True)


def torch_fns(size, args, batch):
  """(n_params, forward fn, train-step fn) of the diffusers UNet2DModel."""
  torch.manual_seed(0)
  x, z, sigma = (torch.from_numpy(a) for a in batch)
  x, z = (t.permute(0, 3, 1, 2).contiguous() for t in (x, z))
  model = build_torch(size, args)
  n_params = sum(p.numel() for p in model.parameters())
  opt = torch.optim.Adam(model.parameters(), lr=LR)
  s = sigma[:, None, None, None]

  def forward():
    model.eval()
    with torch.no_grad():
      model(x, sigma).sample

  def train_once():
    model.train()
    opt.zero_grad(set_to_none=True)
    score = model(x + s * z, sigma).sample  # Already divided by sigma.
    loss = ((score * s + z) ** 2).sum(dim=(1, 2, 3)).mean()
    loss.backward()
    opt.step()

  return n_params, forward, train_once


# ------------------------------------------------------------------ report --

def size_label(size):
  mult = ','.join(map(str, size['ch_mult']))
  res, nf, batch = size['res'], size['nf'], size['batch']
  return f'{res}x{res} nf={nf} ({mult}) b={batch}'


def versus(ours, theirs):
  """'ours / torch (ratio)' cell."""
  return f'{ours:8.1f} / {theirs:8.1f} ({ours / theirs:4.2f}x)'


def print_table(rows):
  head = (f"{'size':<30} {'params ours / torch':>21}  "
          f"{'fwd ms ours / torch (ratio)':>28}  "
          f"{'train ms ours / torch (ratio)':>29}  "
          f"{'no-FIR fwd / train ms':>21}")
  print(head)
  print('-' * len(head))
  for r in rows:
    print(f"{r['label']:<30} {r['p_ours']:>10,} / {r['p_torch']:<9,}  "
          f"{versus(r['f_ours'], r['f_torch'])}  "
          f" {versus(r['t_ours'], r['t_torch'])}  "
          f"{r['f_nofir']:9.1f} / {r['t_nofir']:9.1f}")
  print('ratio = ours / torch: < 1 means our JAX NCSN++ is faster.')


def run_size(size, args):
  """Times all variants on one batch; returns a table row."""
  batch = make_batch(size)
  nets = {'ours': ours_fns(size, args, batch, fir=True),
          'nofir': ours_fns(size, args, batch, fir=False),
          'torch': torch_fns(size, args, batch)}
  fns = {}
  for name, (_, forward, train) in nets.items():
    fns['f_' + name], fns['t_' + name] = forward, train
  row = {name: 1e3 * s for name, s in interleaved_seconds(fns, args.repeats).items()}
  row.update(label=size_label(size), p_ours=nets['ours'][0],
             p_torch=nets['torch'][0])
  print(f"  done {row['label']} (load avg {os.getloadavg()[0]:.2f})",
        flush=True)
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', nargs='+', type=parse_size,
                      default=[parse_size(s) for s in (
                          '8:32:1,2:128', '16:64:1,2,2:32', '32:64:1,2,2,2:8')],
                      help='RES:NF:CH_MULT:BATCH, e.g. 16:64:1,2,2:32')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--num-res-blocks', type=int, default=2)
  parser.add_argument('--attn', type=int, nargs='*', default=[16],
                      help='attention resolutions (NCSN++ attn_resolutions)')
  parser.add_argument('--dropout', type=float, default=0.1)
  args = parser.parse_args()

  threads = len(os.sched_getaffinity(0))  # XLA:CPU uses every visible core.
  torch.set_num_threads(threads)
  print(f'jax {jax.__version__} ({jax.default_backend()}), torch '
        f'{torch.__version__}, threads {threads}, repeats {args.repeats}, '
        f'num_res_blocks {args.num_res_blocks}, attn {args.attn}, '
        f"OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}, "
        f'load avg {os.getloadavg()[0]:.2f}', flush=True)
  rows = [run_size(size, args) for size in args.sizes]
  print_table(rows)
  print(f'load average after run: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
