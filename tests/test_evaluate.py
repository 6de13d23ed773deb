"""--mode=eval (resumable sample shards, metrics rows), --mode=fid_stats against pytorch-fid's own
pipeline, and training summaries in TensorBoard."""
import json
import os
import pathlib
import signal
import sys
import threading
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli import MainProcesses, finish
from configs import load_config
from configs.errors import MissingFileError
from evaluation import inception_weights
from training.interrupt import Interrupted
from workflows import build, evaluate, fid_stats, train

eval_module = sys.modules["workflows.evaluate"]  # the package's `evaluate` is the function

GMM = "configs/gmm_analytic.py:vpsde"
EVAL = {"eval.num_generated": 3000, "sampling.batch_size": 500, "sampling.num_steps": 100,
        "eval.enable_bpd": True, "eval.num_samples": 500, "eval.kid_examples": 1000}
# Three shards, quick: for the in-process interrupt.
QUICK_EVAL = {"eval.num_generated": 1500, "sampling.batch_size": 500, "sampling.num_steps": 20,
              "eval.enable_bpd": False, "eval.kid_examples": 0}  # KID: the slow part
# Twelve shards of 1000 steps (~0.3 s each on 2 cores): time to kill the run part way.
SLOW_EVAL = {**EVAL, "eval.num_generated": 3000, "sampling.batch_size": 250,
             "sampling.grid": "uniform", "sampling.num_steps": 1000, "eval.num_samples": 200,
             "eval.batch_size": 200, "eval.kid_examples": 500}


def main_args(workdir, overrides):
  return [f"--config={GMM}", f"--workdir={workdir}", "--mode=eval",
          *(f"--config.{k}={v}" for k, v in overrides.items())]


def shard_files(workdir):
  return sorted((pathlib.Path(workdir) / "eval" / "ckpt_0").glob("samples_*.npz"))


@pytest.mark.slow  # 26-27 s: a killed subprocess and two fresh runs
def test_killed_eval_resumes_to_the_same_samples_and_metrics(tmp_path):
  """SIGKILL after two shards, rerun: bit-identical shards and the same metrics row as an
  uninterrupted run (the analytic model, whose 'checkpoint' is step 0)."""
  whole, killed = tmp_path / "whole", tmp_path / "killed"
  with MainProcesses() as cli:
    assert cli.run(*main_args(whole, SLOW_EVAL)).returncode == 0
    proc, out, err = cli.start(*main_args(killed, SLOW_EVAL))
    deadline = time.time() + 300
    while len(shard_files(killed)) < 2 and time.time() < deadline and proc.is_alive():
      time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    finish(proc, out, err)
    assert 2 <= len(shard_files(killed)) < 12  # killed part way
    assert not (killed / "eval" / "metrics.jsonl").exists()
    assert cli.run(*main_args(killed, SLOW_EVAL)).returncode == 0
  assert [p.name for p in shard_files(killed)] == [p.name for p in shard_files(whole)]
  for a, b in zip(shard_files(whole), shard_files(killed)):
    np.testing.assert_array_equal(np.load(a)["samples"], np.load(b)["samples"])
  rows = [(d / "eval" / "metrics.jsonl").read_text().splitlines() for d in (whole, killed)]
  assert len(rows[0]) == len(rows[1]) == 1 and json.loads(rows[0][0]) == json.loads(rows[1][0])


def test_interrupted_eval_saves_its_shard_and_resumes_to_the_same_metrics(tmp_path, monkeypatch,
                                                                         capsys):
  """SIGINT while the second of three shards is drawn: that shard is saved, then Interrupted
  (exit code 130) names what was saved; the rerun draws only the third shard, under one overall
  progress bar that counts the saved two as done, and gives the uninterrupted run's metrics."""
  if threading.current_thread() is not threading.main_thread():
    pytest.skip("signal handlers need the main thread")
  config = load_config(GMM, QUICK_EVAL)
  whole = evaluate(config, tmp_path / "whole")
  assert "3/3" in capsys.readouterr().err  # one bar over the 3 shards ...
  real_draw, calls = eval_module.draw_samples, []

  def draw_then_signal(*args, **kwargs):
    calls.append(args[-1])  # the first sample index
    if len(calls) == 2:
      signal.raise_signal(signal.SIGINT)
    return real_draw(*args, **kwargs)

  monkeypatch.setattr(eval_module, "draw_samples", draw_then_signal)
  cut = tmp_path / "cut"
  with pytest.raises(Interrupted) as err:
    evaluate(config, cut)
  assert err.value.exit_code == 130
  assert "at checkpoint 0, after 1000 of 1500 samples; saved" in str(err.value)
  assert [p.name for p in shard_files(cut)] == ["samples_00000000.npz", "samples_00000500.npz"]
  assert not (cut / "eval" / "metrics.jsonl").exists()
  capsys.readouterr()
  assert evaluate(config, cut) == whole and calls[2:] == [1000]  # only the missing shard drawn
  bar = capsys.readouterr().err
  assert "2/3" in bar and "3/3" in bar and "sample" not in bar, bar  # ... no per-batch bars
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_missing_inception_weights_are_one_short_line_naming_the_flag(tmp_path):
  """The library names its argument (path), the config boundary the key that sets it."""
  with pytest.raises(MissingFileError, match="path=.* is not a file; set path to"):
    inception_weights.find_weights(tmp_path / "nowhere.pth")
  config = load_config("configs/digits.py", {"eval.features": "inception",
                                             "eval.inception_weights": str(tmp_path / "x.pth")})
  with pytest.raises(MissingFileError) as err:
    build.build_feature_fn(config, "unit", None)
  message = err.value.args[0]
  assert "eval.inception_weights=" in message and "--config.eval.inception_weights=" in message
  assert "\n" not in message and len(message) < 200 + len(str(tmp_path)), message
  assert inception_weights.WEIGHTS_URL in err.value.detail


@pytest.mark.slow  # 50 s in CI's fast step: 3000 samples and their bits/dim
def test_eval_metrics_of_the_exact_model_are_near_zero_and_positive_for_a_bad_sampler(tmp_path):
  """The exact score's samples are close to the data (FD, KID ~ 0, within sampling noise); one
  Euler-Maruyama step from the prior is far. bits/dim equals the exact density's."""
  good = evaluate(load_config(GMM, EVAL), tmp_path / "good")[0]
  bad = evaluate(load_config(GMM, {**EVAL, "sampling.num_steps": 1, "eval.enable_bpd": False,
                                   "sampling.method": "pc", "sampling.predictor": "euler_maruyama"}),
                 tmp_path / "bad")[0]
  assert good["num_samples"] == 3000 and good["num_failed"] == 0 and good["mean_nfe"] == 100
  assert "kid" not in good and "kid_std" not in good  # reported x 10^3, as kid_x1e3
  assert good["fd"] < 0.02 and abs(good["kid_x1e3"]) < 3 * good["kid_x1e3_std"] + 10, good
  assert bad["fd"] > 50 * good["fd"] and (
      bad["kid_x1e3"] > good["kid_x1e3"] + 10 * good["kid_x1e3_std"] + 1000), bad
  assert 1.0 < good["bits_per_dim"] < 2.5 and good["bits_per_dim_stderr"] < 0.05
  scalars = EventAccumulator(str(tmp_path / "good" / "tensorboard" / "eval"))
  scalars.Reload()
  assert scalars.Scalars("eval/fd")[0].value == pytest.approx(good["fd"], rel=1e-6)


def test_training_writes_tensorboard_scalars(tmp_path):
  config = load_config("configs/toy.py:two_moons,vpsde", {
      "training.n_iters": 20, "training.log_freq": 10, "training.batch_size": 64, "model.nf": 16,
      "training.snapshot_freq": 20, "training.snapshot_freq_for_preemption": 20})
  train(config, tmp_path)
  logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  events = EventAccumulator(str(tmp_path / "tensorboard" / "train"))
  events.Reload()
  assert [e.step for e in events.Scalars("train/loss")] == [10, 20]
  for event, record in zip(events.Scalars("train/loss"), logged):
    assert event.value == pytest.approx(record["loss"], rel=1e-6)
  assert events.Scalars("train/learning_rate")[-1].value == pytest.approx(2e-3 * 20 / 100)


@pytest.mark.slow  # CI budget, 21-31 s: pytorch-fid's pipeline and ours on the same images
def test_fid_stats_equal_pytorch_fids_pipeline(tmp_path):
  """mu and sigma of random-weight Inception features of digits (grey -> RGB, bilinear to 299)
  equal pytorch-fid's InceptionV3 on the same images and weights, to 1e-4."""
  torch = pytest.importorskip("torch")
  import torch_reference  # pylint: disable=import-outside-toplevel
  inception3, wrapper = torch_reference.random_pytorch_fid_inception(seed=3)
  weights = tmp_path / "pt_inception-random.pth"
  torch.save(inception3.state_dict(), weights)
  config = load_config("configs/digits.py:vpsde", {
      "eval.features": "inception", "eval.inception_weights": str(weights),
      "eval.reference_examples": 24, "eval.batch_size": 12, "data.image_size": 16})
  stats = np.load(fid_stats(config, tmp_path))
  images = build.load_split(config, "train")[np.arange(24)]  # uint8 (24, 16, 16, 1), upsampled
  rgb = np.repeat(images, 3, axis=-1).astype(np.float32) / 255.0  # PIL convert('RGB'), ToTensor
  pool = torch_reference.torch_outputs(inception3, wrapper, rgb)[0].astype(np.float64)
  np.testing.assert_allclose(stats["mu"], pool.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(stats["sigma"], np.cov(pool, rowvar=False), rtol=1e-4, atol=1e-5)
  assert int(stats["num_images"]) == 24 and "bilinear" in str(stats["resize"])


def test_per_seed_rows_equal_single_seed_runs_and_the_summary_aggregates_them(tmp_path):
  """eval.seeds=(3, 4): each per-seed row equals the row of a single-seed run with that seed
  (samples and likelihood probes follow the seed); the summary row holds mean, std (ddof 1) and
  min of each number over them and a bootstrap interval around the first seed's FD. A rerun
  finds every row written and draws nothing."""
  quick = {**QUICK_EVAL, "eval.num_generated": 500, "eval.enable_bpd": True,
           "eval.num_samples": 50, "eval.trace_estimator": "gaussian", "eval.bootstrap": 50}
  rows = evaluate(load_config(GMM, {**quick, "eval.seeds": (3, 4)}), tmp_path / "both")
  singles = [evaluate(load_config(GMM, {**quick, "seed": seed}), tmp_path / f"seed{seed}")[0]
             for seed in (3, 4)]
  assert [r.get("seed") for r in rows] == [3, 4, None] and rows[:2] == singles
  summary = rows[2]
  assert summary["seeds"] == [3, 4] and singles[0]["fd"] != singles[1]["fd"]
  for key in ("fd", "bits_per_dim", "mean_nfe"):
    values = np.array([r[key] for r in singles])
    np.testing.assert_allclose([summary[f"{key}_mean"], summary[f"{key}_std"],
                                summary[f"{key}_min"]],
                               [values.mean(), values.std(ddof=1), values.min()], rtol=1e-12)
  low, high = summary["fd_bootstrap_95"]
  assert low < singles[0]["fd"] < high
  assert evaluate(load_config(GMM, {**quick, "eval.seeds": (3, 4)}), tmp_path / "both") == []
  assert sorted(p.name for p in (tmp_path / "both" / "eval").glob("ckpt_*")) == [
      "ckpt_0_seed3", "ckpt_0_seed4"]
