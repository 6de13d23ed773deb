"""Overhead of the jitted grid samplers (PC, DDIM, Heun) over their score evaluations.

ratio = time of one jitted sampler run / (NFE x time of one jitted score evaluation), on the
same batch with a small MLP score network (random parameters: timing only). A ratio near 1
means the loop, the per-sample noise and the predictor/corrector arithmetic are nearly free.
A single jitted call also pays its dispatch, so `vs loop` compares with a jitted loop of NFE
bare score evaluations instead (the same score function, parameters and batch; t changes every
iteration, as in the sampler, so XLA cannot hoist the time embedding out of the loop): the
sampler's own overhead. Sampler and loop are timed in alternation (the fastest of --repeats
rounds each), so a change in machine load hits both alike.

The last line times the per-sample noise alone (a loop of N draws of (batch, dims) normals from
fold_in(key_j, step)): as samplers.per_sample_keys draws it (threefry unrolled) and as
vmap(jax.random.normal(fold_in(...))) does, whose hash XLA:CPU runs as two rolled loops per step.

  python benchmarks/sampler_overhead.py --batch 256 --dims 2 --N 1000
"""
import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import models
from models.mlp import MLP
from samplers import ModelFns, get_solver, make_grid, per_sample_normal, sample_keys
from sde_lib import get_sde
from timing import interleaved_seconds


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--dims", type=int, default=2)
  parser.add_argument("--N", type=int, default=1000, help="grid steps (PC: the SDE's N)")
  parser.add_argument("--sde", default="vpsde", choices=["vesde", "vpsde", "subvpsde"])
  parser.add_argument("--nf", type=int, default=128, help="MLP width")
  parser.add_argument("--layers", type=int, default=3, help="MLP residual blocks")
  parser.add_argument("--combos", default="pc:euler_maruyama:none,pc:reverse_diffusion:langevin,"
                      "pc:none:ald,pc:reverse_diffusion:mala,ddim,heun",
                      help="comma-separated solvers; pc:PREDICTOR:CORRECTOR for PC")
  parser.add_argument("--n-steps", type=int, default=1, help="corrector steps per PC step")
  parser.add_argument("--repeats", type=int, default=5)
  return parser.parse_args()


def noise_seconds(keys, shape: tuple, steps: int, repeats: int) -> dict:
  """Seconds per step of per-sample noise: samplers.per_sample_keys vs vmapped jax.random."""
  draws = {
      "unrolled": lambda i: per_sample_normal(keys, i, shape),
      "jax.random": lambda i: jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, i),
                                                                   shape))(keys)}
  zero = jnp.zeros(keys.shape + tuple(shape))
  loops = {name: jax.jit(lambda draw=draw: jax.lax.fori_loop(
      0, steps, lambda i, y: 0.5 * y + draw(i), zero)) for name, draw in draws.items()}
  return {name: t / steps for name, t in interleaved_seconds(loops, repeats, 1, min).items()}


def traced_nfe(run, *args) -> int:
  """The NFE a grid solver reports (a Python int, known once traced)."""
  box = []
  jax.eval_shape(lambda *a: box.append(run(*a)[1]) or 0, *args)
  return int(box[0])


def main():
  args = parse_args()
  sde = get_sde(args.sde, N=args.N)
  embedding = "fourier" if args.sde == "vesde" else "positional"
  name = models.parameterization_name("score_sde", args.sde, True)
  model = models.NetworkScore(sde, MLP(nf=args.nf, num_layers=args.layers,
                                       embedding_type=embedding),
                              models.PARAMETERIZATIONS[name](sde))
  x = jax.random.normal(jax.random.key(0), (args.batch, args.dims))
  params = model.init(jax.random.key(1), x)
  t = jnp.full((args.batch,), 0.5)
  score = jax.jit(model.score)
  # One evaluation, timed as the median of many calls (each includes its dispatch).
  jax.block_until_ready(score(params, x, t))
  calls = []
  for _ in range(200):
    start = time.perf_counter()
    jax.block_until_ready(score(params, x, t))
    calls.append(time.perf_counter() - start)
  score_time = float(np.median(calls))
  step = lambda p, n: lambda i, y: y + 1e-6 * model.score(p, y, jnp.full_like(t, 1.0 - i / n))
  score_loop = jax.jit(lambda p, x, n: jax.lax.fori_loop(0, n, step(p, n), x), static_argnums=2)
  keys = sample_keys(jax.random.key(2), jnp.arange(args.batch))
  print(f"load average {os.getloadavg()}")
  print(f"sde={args.sde} batch={args.batch} dims={args.dims} N={args.N} MLP nf={args.nf} "
        f"layers={args.layers}; one score evaluation: {score_time * 1e3:.3f} ms")
  times = make_grid(sde, "uniform", args.N, 1e-3)
  print(f"{'solver':>36} {'NFE':>6} {'sampler s':>10} "
        f"{'NFE x score s':>14} {'ratio':>6} {'loop s':>7} {'vs loop':>7}")
  for combo in args.combos.split(","):
    method, *pc = combo.split(":")
    options = (dict(predictor=pc[0], corrector=pc[1], n_steps=args.n_steps, use_tables=True)
               if pc else {})
    solver = functools.partial(get_solver(method).sample, **options)
    fns = lambda p: ModelFns(sde, functools.partial(model.score, p))
    run = lambda p, k, solver=solver: solver(fns(p), times, k, (args.dims,))
    nfe = traced_nfe(run, params, keys)
    sample = jax.jit(lambda p, k, run=run: run(p, k)[0])
    timed = interleaved_seconds({"sampler": lambda: sample(params, keys),
                                 "loop": lambda: score_loop(params, x, nfe)}, args.repeats, 1, min)
    sampler_time, loop_time = timed["sampler"], timed["loop"]
    print(f"{combo:>36} {nfe:>6} {sampler_time:>10.3f} "
          f"{nfe * score_time:>14.3f} {sampler_time / (nfe * score_time):>6.3f} "
          f"{loop_time:>7.3f} {sampler_time / loop_time:>7.3f}")
  noise = noise_seconds(keys, (args.dims,), args.N, args.repeats)
  print("per-sample noise alone, per step: " + ", ".join(
      f"{name} {seconds * 1e6:.1f} us" for name, seconds in noise.items())
        + f" (one score evaluation: {score_time * 1e6:.0f} us)")
  print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
  main()
