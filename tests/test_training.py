"""Training: same params, samples and per-example likelihoods on 1 and 8 devices, one compile,
exact resume, clear errors."""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import load_config
from parallel import DataParallel
from training import checkpoints
from workflows.train import train

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOY = "configs/toy.py:two_moons,vpsde"
SMALL = {"training.batch_size": 64, "model.nf": 32, "sde.num_scales": 20, "sampling.num_steps": 20,
         "sampling.num_samples": 16, "sampling.batch_size": 8}
# Digits through the grain input pipeline, with an MLP over the 64 pixels (compiles in seconds).
DIGITS = "configs/digits.py:vpsde"
DIGITS_SMALL = {**SMALL, "training.batch_size": 16, "model.name": "mlp",
                "data.random_flip": True, "data.uniform_dequantization": True}


def run_steps(tmp_path, devices: int, spec: str = TOY, overrides: dict = SMALL,
              fast_compile: bool = False, likelihood: bool = True) -> dict:
  """Params after 3 train steps, computed in a subprocess that sees `devices` CPU devices
  (fast_compile: without LLVM's optimisations, for networks whose compile dominates), and with
  `likelihood` held-out per-example log-likelihoods."""
  out = tmp_path / f"params_{devices}.npz"
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS=str(int(fast_compile)),
             LIKELIHOOD=str(int(likelihood)))
  args = [f"{k}={v!r}" for k, v in overrides.items()]
  subprocess.run([sys.executable, "tests/train_steps_script.py", str(out), spec, *args], cwd=ROOT,
                 env=env, check=True, capture_output=True)
  return dict(np.load(out))


def assert_same_training(tmp_path, spec: str, overrides: dict, fast_compile: bool = False,
                         likelihood: bool = True):
  one, eight = (run_steps(tmp_path, n, spec, overrides, fast_compile, likelihood) for n in (1, 8))
  assert int(one["devices"]) == 1 and int(eight["devices"]) == 8
  assert int(one["compiles"]) == 1 and int(eight["compiles"]) == 1
  assert_same_outputs(one, eight)


def assert_same_outputs(one: dict, other: dict):
  """Params, loss and samples to float rounding; per-example likelihoods to the adaptive solve's
  tolerance: float rounding that differs between compiled batch shapes steers its step sizes
  (measured on the toy, 1 vs 8 devices, at rtol = atol = 1e-6: 4e-4 nats; at 1e-5: 9e-3)."""
  assert one.keys() == other.keys()
  for key in set(one) - {"devices", "compiles", "logp"}:
    np.testing.assert_allclose(one[key], other[key], rtol=2e-5, atol=2e-6, err_msg=key)
  if "logp" in one:
    np.testing.assert_allclose(one["logp"], other["logp"], rtol=0, atol=1e-3)


def test_eight_devices_match_one_device(tmp_path):
  assert_same_training(tmp_path, TOY, SMALL)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_two_processes(out, spec: str, overrides: list[dict], likelihood: bool = False) -> list:
  """tests/train_steps_script.py in 2 processes x 4 CPU devices (jax.distributed); overrides[i]
  for process i. Returns the processes (finished) and their logs."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             LIKELIHOOD=str(int(likelihood)))
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, "tests/train_steps_script.py", str(out), spec,
                             *[f"{k}={v!r}" for k, v in overrides[i].items()]],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(env, MULTIPROCESS=f"127.0.0.1:{port},2,{i}")) for i in range(2)]
  return procs, [p.communicate(timeout=240)[0].decode() for p in procs]


@pytest.mark.slow  # 20-27 s even for the toy (two jax.distributed processes start and compile)
@pytest.mark.parametrize("spec,overrides", [(TOY, SMALL), (DIGITS, DIGITS_SMALL)])
def test_two_processes_match_one_process(tmp_path, spec, overrides):
  """Two local processes x 4 CPU devices (jax.distributed) train like one process x 8 devices.

  Digits go through the grain pipeline: each process reads only its half of every batch (with a
  worker process each here, in-process in the single run)."""
  out = tmp_path / "params_2x4.npz"
  multi_overrides = {**overrides, "data.num_workers": 1} if spec == DIGITS else overrides
  likelihood = spec == TOY  # the held-out likelihoods: the toy's (digits' cost 25 s more)
  procs, logs = run_two_processes(out, spec, [multi_overrides] * 2, likelihood)
  assert all(p.returncode == 0 for p in procs), logs[0][-3000:] + logs[1][-3000:]
  multi, single = dict(np.load(out)), run_steps(tmp_path, 8, spec, overrides,
                                                likelihood=likelihood)
  assert int(multi["devices"]) == 8
  assert_same_outputs(multi, single)


@pytest.mark.slow
def test_hosts_with_different_batch_sizes_stop_with_a_clear_error(tmp_path):
  procs, logs = run_two_processes(tmp_path / "unused.npz", TOY,
                                  [SMALL, {**SMALL, "training.batch_size": 32}])
  assert all(p.returncode != 0 for p in procs)
  assert all("hosts differ" in log and "same config" in log for log in logs), logs[0][-2000:]


def test_batch_that_devices_or_hosts_cannot_split_is_a_clear_error(monkeypatch):
  parallel = DataParallel.over_all_devices()
  with pytest.raises(ValueError, match="needs 16 on every host"):
    parallel.global_array(np.zeros((8, 2), np.float32), global_batch=16)
  monkeypatch.setattr(jax, "device_count", lambda: 8)
  with pytest.raises(ValueError, match=r"^batch_size=12 must be divisible by the number of devices \(8\); set batch_size to"):
    parallel.check_batch_size(12)


def small_config(spec: str = TOY, **overrides):
  base = SMALL if spec == TOY else DIGITS_SMALL
  return load_config(spec, {**base, "training.log_freq": 5, "training.snapshot_freq": 10,
                            "training.snapshot_freq_for_preemption": 5, **overrides})


def assert_resume_matches(tmp_path, spec=TOY, full=None, first=None, second=None):
  """Training 20 steps at once and 10 + 10 with a resume in between give bit-identical params
  and EMA params (`full`, `first`, `second`: overrides of the three runs)."""
  run = lambda overrides, n, d: train(small_config(spec, **(overrides or {}),
                                                   **{"training.n_iters": n}), tmp_path / d)
  uninterrupted = run(full, 20, "full")
  run(first, 10, "split")
  resumed = run(second, 20, "split")
  assert int(resumed.step) == 20
  for a, b in zip(jax.tree.leaves(uninterrupted.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(uninterrupted.ema_params), jax.tree.leaves(resumed.ema_params)):
    np.testing.assert_array_equal(a, b)
  assert (tmp_path / "split" / "config.json").is_file()
  assert sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir()) == ["10", "20"]


def test_resume_gives_same_params_as_uninterrupted(tmp_path):
  assert_resume_matches(tmp_path)


def test_resume_of_grain_input_with_workers_gives_same_params_as_uninterrupted(tmp_path):
  """Digits through the grain pipeline (flips, dequantisation): in-process for the uninterrupted
  run, 2 worker processes before the interruption and 1 after; the data position travels in the
  checkpoint."""
  assert_resume_matches(tmp_path, DIGITS, {"data.num_workers": 0}, {"data.num_workers": 2},
                        {"data.num_workers": 1})
  records = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").open()]
  assert [r["step"] for r in records] == [5, 10, 15, 20]
  assert all(0.0 <= r["data_wait_frac"] <= 1.0 and r["data_wait_s"] >= 0.0 for r in records)


def test_checkpoint_that_does_not_match_config_is_a_clear_error(tmp_path):
  """The checkpoint's own check (config.json removed, so the workdir's config check passes):
  one short line naming the first differing parameter and both shapes."""
  train(small_config(**{"training.n_iters": 5}), tmp_path)
  (tmp_path / "config.json").unlink()
  with pytest.raises(checkpoints.CheckpointMismatchError, match="does not match") as err:
    train(small_config(**{"training.n_iters": 10, "model.nf": 16}), tmp_path)
  message = err.value.args[0]
  assert "\n" not in message and len(message) < 300, message
  assert re.search(r"first difference at \S+: checkpoint \(.*32.*\), config \(.*16.*\)", message)


def test_nan_loss_is_a_clear_error(tmp_path):
  with pytest.raises(FloatingPointError, match="lower --config.optim.lr"):
    train(small_config(**{"training.n_iters": 5, "optim.lr": float("nan")}), tmp_path)


def test_fused_steps_match_single_steps(tmp_path):
  single = train(small_config(**{"training.n_iters": 10}), tmp_path / "single")
  fused = train(small_config(**{"training.n_iters": 10, "training.steps_per_call": 2,
                                "training.log_freq": 10, "training.snapshot_freq_for_preemption": 10}),
                tmp_path / "fused")
  assert int(fused.step) == 10
  for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(fused.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
