"""Compiled peak memory and step time of training: float32 vs bfloat16 vs remat (and both).

  python benchmarks/memory.py --time-batch 2 --repeats 3

(`--compile-variants f32 bf16` skips compiling the remat steps: their `saved` column is still
printed. `--configs` with no name: only the step timing.)

For each config (CIFAR-10 NCSN++ cont. deep at batch 128, the 1024x1024 NCSN++ configs at their
released batch 8) and each variant (model.dtype, training.remat), the train step
(workflows/train.py's: loss, grads, Adam, EMA; state donated) is compiled on abstract inputs
(jax.ShapeDtypeStruct: nothing is allocated) and XLA's memory analysis read:
  peak = arguments + outputs + temporaries - aliased (donated state reused for the new state).
Beside it, `saved` is what the backward pass keeps from the forward pass (the residuals of
jax.vjp of the loss, in their dtypes, less the parameters they include), from tracing alone: it
does not depend on the backend's buffer assignment, so it shows what bf16 and remat save on an
accelerator even where XLA:CPU computes bf16 convolutions in float32. It is counted before XLA
fuses elementwise ops (which recomputes cheap ones and drops broadcast constants), so it can
exceed the compiled peak; compare it across variants, not with `peak`. XLA:CPU's own peak does
not show remat at all (its schedule does not defer the recomputation: a 20-block MLP's temp grew
from 328 to 480 MiB with jax.checkpoint), so read `saved` for remat.
`--sample-batches` compiles one score evaluation (the sampler's step: a forward pass) of the
1024-px configs at those batches; its peak sets their sampling.batch_size.
Step time is measured only at --time-batch on the CIFAR-10 config (a batch-128 deep step or any
1024-px step does not fit this machine's memory), median of --repeats after one warm-up call.
Numbers are XLA:CPU's (this machine has no accelerator); GPU/TPU buffer assignment differs, and
XLA:CPU runs some bf16 ops through float32, so bf16 time on CPU says little about accelerators.
"""
import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp

from configs import load_config
from training.step import make_train_step
from workflows import build

GIB = 2.0**30
CONFIGS = {"cifar10_deep": ("configs/ve/ncsnpp_cifar10_deep_continuous.py", 128),
           "ffhq_1024": ("configs/ve/ncsnpp_ffhq_1024_continuous.py", 8),
           "celebahq_1024": ("configs/ve/ncsnpp_celebahq_1024_continuous.py", 8)}
VARIANTS = {"f32": ("float32", False), "bf16": ("bfloat16", False),
            "remat": ("float32", True), "bf16+remat": ("bfloat16", True)}


def _config(path, dtype, remat):
  return load_config(path, {"model.dtype": dtype, "training.remat": remat})


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def train_step_and_inputs(config, batch_size):
  """(jitted step with donated state, abstract (state, batch, key)) for config."""
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  optimizer = build.build_optimizer(config)
  step = make_train_step(build.build_loss(config, sde, score_model), optimizer,
                         config.training.ema_rate)
  init = build.state_initializer(config, score_model, optimizer)
  state = jax.eval_shape(init, jax.random.key(0))
  batch = jax.ShapeDtypeStruct((batch_size, *build.data_info(config).shape), jnp.float32)
  key = jax.eval_shape(lambda: jax.random.key(0))
  return jax.jit(step, donate_argnums=0), (state, batch, key), init


def _gib(tree):
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)) / GIB


def saved_activations_gib(config, batch_size):
  """GiB the loss's backward pass keeps from its forward pass at batch_size (parameters
  excluded), by tracing jax.vjp on abstract inputs."""
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  loss_fn = build.build_loss(config, sde, score_model)
  _, (state, batch, key), _ = train_step_and_inputs(config, batch_size)
  residuals = jax.eval_shape(
      lambda p, b, k: jax.vjp(lambda q: loss_fn(q, b, k)[0], p)[1], state.params, batch, key)
  return _gib(residuals) - _gib(state.params)


def memory_gib(compiled):
  """(peak, arguments, outputs, temporaries, aliased) in GiB of a compiled function."""
  m = compiled.memory_analysis()
  parts = (m.argument_size_in_bytes, m.output_size_in_bytes, m.temp_size_in_bytes,
           m.alias_size_in_bytes)
  peak = parts[0] + parts[1] + parts[2] - parts[3]
  return tuple(x / GIB for x in (peak, *parts))


def train_memory(path, batch_size, variant, compile_step: bool):
  """Row of the train-step table: saved activations always; compiled memory if compile_step."""
  config = _config(path, *VARIANTS[variant])
  row = dict(batch=batch_size, variant=variant, saved=saved_activations_gib(config, batch_size))
  if compile_step:
    step, inputs, _ = train_step_and_inputs(config, batch_size)
    start = time.perf_counter()
    peak, *parts = memory_gib(step.lower(*inputs).compile())
    row.update(peak=peak, args=parts[0], out=parts[1], temp=parts[2], alias=parts[3],
               compile_s=time.perf_counter() - start)
  return row


def sample_memory(path, batch_size, dtype):
  """Peak GiB of one jitted score evaluation (float32 params) at batch_size."""
  config = _config(path, dtype, False)
  score_model = build.build_score_model(config, build.build_sde(config))
  params = jax.eval_shape(lambda k: score_model.init(k, build.example_batch(config)),
                          jax.random.key(0))
  x = jax.ShapeDtypeStruct((batch_size, *build.data_info(config).shape), jnp.float32)
  t = jax.ShapeDtypeStruct((batch_size,), jnp.float32)
  compiled = jax.jit(score_model.score).lower(params, x, t).compile()
  return memory_gib(compiled)[0]


def step_time_ms(path, batch_size, variant, repeats):
  """Median ms of the real train step at batch_size (one warm-up call first)."""
  config = _config(path, *VARIANTS[variant])
  step, (_, batch, _), init = train_step_and_inputs(config, batch_size)
  state = jax.jit(init)(jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), batch.shape)
  key = jax.random.key(2)
  state, _ = jax.block_until_ready(step(state, x, key))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    state, _ = jax.block_until_ready(step(state, x, key))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


COLUMNS = (("peak", "peak GiB", 9), ("peak_ratio", "/ f32", 6), ("args", "args", 7),
           ("out", "out", 7), ("temp", "temp", 8), ("alias", "alias", 7), ("saved", "saved", 7),
           ("saved_ratio", "/ f32", 6), ("compile_s", "compile s", 9))


def print_train_table(rows):
  """Rows of train_memory (with ratios to the first variant); '-' where not compiled."""
  print(f"{'config':<15} {'batch':>5} {'variant':<11} "
        + " ".join(f"{title:>{w}}" for _, title, w in COLUMNS))
  for r in rows:
    cells = [f"{r[k]:{w}.2f}" if k in r else f"{'-':>{w}}" for k, _, w in COLUMNS]
    print(f"{r['config']:<15} {r['batch']:>5} {r['variant']:<11} " + " ".join(cells), flush=True)


def with_ratios(rows):
  """Adds peak / saved relative to the first row (the f32 variant when given first)."""
  for r in rows:
    for key in ("peak", "saved"):
      if key in r and key in rows[0]:
        r[key + "_ratio"] = r[key] / rows[0][key]
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
  parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
  parser.add_argument("--compile-variants", nargs="*", default=list(VARIANTS),
                      choices=list(VARIANTS), help="variants whose train step is compiled")
  parser.add_argument("--sample-batches", type=int, nargs="*", default=[1, 4, 16])
  parser.add_argument("--time-batch", type=int, default=2, help="0: no timing")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  print(f"jax {jax.__version__} ({jax.default_backend()}), cores {len(os.sched_getaffinity(0))}, "
        f"load avg {os.getloadavg()[0]:.2f}", flush=True)
  rows = []
  for name in args.configs:
    path, batch = CONFIGS[name]
    config_rows = []
    for variant in args.variants:
      config_rows.append(dict(config=name, **train_memory(path, batch, variant,
                                                           variant in args.compile_variants)))
      print_train_table(with_ratios(config_rows)[-1:])
    rows += config_rows
  print("\nTrain step: compiled memory (peak = args + out + temp - alias) and saved activations:")
  print_train_table(rows)
  for name in args.configs:
    if name.endswith("1024"):
      for dtype in ("float32", "bfloat16"):
        peaks = [f"b={b}: {sample_memory(CONFIGS[name][0], b, dtype):.2f}" for b in args.sample_batches]
        print(f"sampling (one score call) {name} {dtype} peak GiB  " + "  ".join(peaks), flush=True)
  if args.time_batch:
    path = CONFIGS["cifar10_deep"][0]
    times = {v: step_time_ms(path, args.time_batch, v, args.repeats) for v in args.variants}
    base = times.get("f32", next(iter(times.values())))
    print(f"\nStep time, cifar10_deep at batch {args.time_batch} (median of {args.repeats}):")
    for v, ms in times.items():
      print(f"  {v:<11} {ms:9.1f} ms  ({ms / base:4.2f}x f32)")
  print(f"load avg after run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
