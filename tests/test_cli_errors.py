"""Bad input on the command line: each case exits non-zero with one short error line naming the
key or flag that fixes it, no traceback, and leaves no half-made workdir behind. The cases share
one tiny trained workdir and run as children of a forkserver that imported main.py once."""
import types

import numpy as np
import pytest

import main
import workflows
from cli import MainProcesses
from configs import load_config
from configs.errors import UserError
from training.interrupt import Interrupted

TOY = "--config=configs/toy.py:swiss_roll,vpsde"
GMM = "--config=configs/gmm_analytic.py:vpsde"
DIGITS = "--config=configs/digits.py:vpsde"
MAX_LINE = 260  # characters of the error line, "Error: " and the --verbose hint included, with
# the test's temporary directory written as "R"

# (id, arguments, text the error line must hold). Workdirs: {new} a path that does not exist
# (it must still not exist afterwards), {trained} the shared trained toy workdir, {file} a file.
CASES = [
    # Mistyped or unknown names and keys
    ("mistyped_key", ["--workdir={new}", TOY, "--config.training.batchsize=8"], "batch_size"),
    ("unknown_flag", ["--workdir={new}", TOY, "--modee=sample"], "mode"),
    ("unknown_mode", ["--workdir={new}", TOY, "--mode=fly"], "train|sample"),
    ("unknown_sde", ["--workdir={new}", "--config=configs/toy.py:swiss_roll,ito"], "'vpsde'"),
    ("toy_dataset", ["--workdir={new}", "--config=configs/toy.py:moons,vpsde"], "'two_moons'"),
    ("toy_argument", ["--workdir={new}", "--config=configs/toy.py:swiss_roll"], "DATASET,SDE"),
    ("missing_config_file", ["--workdir={new}", "--config=configs/nope.py"], "configs/nope.py"),
    ("moved_key", ["--workdir={new}", TOY, "--config.model.sigma_max=3"], "sde.sigma_max"),
    ("moved_sampling_key", ["--workdir={new}", GMM, "--config.sampling.inverse_method=pigdm",
                            "--mode=sample"], "--config.sampling.inverse.method="),
    ("moved_guidance_key", ["--workdir={new}", GMM, "--config.sampling.class_label=1",
                            "--mode=sample"], "--config.sampling.guidance.class_label="),
    ("moved_task", ["--workdir={new}", GMM, "--config.sampling.task=cfg", "--mode=sample"],
     "--config.sampling.guidance.method=cfg"),
    ("solver_option_of_another_method", ["--workdir={new}", GMM, "--config.sampling.eta=0.5",
                                         "--mode=sample"], "sampling.eta is an option of ddim"),
    ("not_an_int", ["--workdir={new}", TOY, "--config.training.batch_size=abc"],
     "training.batch_size"),
    ("sampling_method", ["--workdir={new}", GMM, "--config.sampling.method=plms", "--mode=sample"],
     "'ddim'"),
    ("grid", ["--workdir={new}", GMM, "--config.sampling.grid=cosine", "--mode=sample"], "'edm'"),
    ("predictor", ["--workdir={new}", GMM, "--config.sampling.method=pc",
                   "--config.sampling.predictor=heun", "--mode=sample"], "'reverse_diffusion'"),
    ("corrector", ["--workdir={new}", GMM, "--config.sampling.method=pc",
                   "--config.sampling.corrector=hmc", "--mode=sample"], "'langevin'"),
    ("trace_estimator", ["--workdir={new}", GMM, "--config.eval.trace_estimator=skilling",
                         "--mode=likelihood"], "'rademacher'"),
    ("sampling_task", ["--workdir={new}", GMM, "--config.sampling.task=deblur", "--mode=sample"],
     "'inpaint'"),
    ("guidance_method", ["--workdir={new}", GMM, "--config.sampling.guidance.method=universal",
                         "--mode=sample"], "'classifier'"),
    ("model_name", ["--workdir={new}", TOY, "--config.model.name=unet"], "'ncsnpp'"),
    ("eval_features", ["--workdir={new}", GMM, "--config.eval.features=fid", "--mode=eval"],
     "'inception'"),
    ("loss", ["--workdir={new}", TOY, "--config.training.loss=l2"], "'dsm'"),
    ("optimizer", ["--workdir={new}", TOY, "--config.optim.optimizer=sgd"], "'adam'"),
    ("dtype", ["--workdir={new}", DIGITS, "--config.model.dtype=float16"], "'bfloat16'"),
    ("extra_argument", ["--workdir={new}", TOY, "sample"], "Unexpected arguments"),
    ("no_workdir", [TOY], "--workdir"),
    ("no_config", ["--workdir={new}"], "--config"),
    ("config_dir_without_json", ["--workdir={new}", "--config=configs"], "config.json"),
    # Sizes and counts
    ("batch_size_zero", ["--workdir={new}", TOY, "--config.training.batch_size=0"],
     "training.batch_size"),
    ("batch_size_negative", ["--workdir={new}", TOY, "--config.training.batch_size=-4"],
     "training.batch_size"),
    ("n_iters_negative", ["--workdir={new}", TOY, "--config.training.n_iters=-5"],
     "training.n_iters"),
    ("sampling_batch_zero", ["--workdir={trained}", "--mode=sample",
                             "--config.sampling.batch_size=0"], "sampling.batch_size"),
    ("num_samples_zero", ["--workdir={trained}", "--mode=sample",
                          "--config.sampling.num_samples=0"], "sampling.num_samples"),
    ("num_steps_zero", ["--workdir={new}", GMM, "--config.sampling.num_steps=0", "--mode=sample"],
     "sampling.num_steps"),
    ("num_workers", ["--workdir={new}", DIGITS, "--config.data.num_workers=-1"],
     "data.num_workers"),
    ("devices_training_batch", ["--workdir={new}", TOY, "--config.training.batch_size=3"],
     "training.batch_size"),
    ("devices_sampling_batch", ["--workdir={trained}", "--mode=sample",
                                "--config.sampling.batch_size=3"], "sampling.batch_size"),
    ("sampling_eps", ["--workdir={new}", GMM, "--config.sampling.eps=2.0", "--mode=sample"],
     "sampling.eps=2.0 must lie in (0, T="),  # the grid's end time, an option of every method
    ("label_dropout", ["--workdir={new}", TOY, "--config.training.label_dropout=1.5"],
     "training.label_dropout"),
    # The workdir and its config
    ("workdir_sde_differs", ["--workdir={trained}", "--config=configs/toy.py:swiss_roll,vesde",
                             "--mode=sample"], "--config={trained}"),
    ("workdir_likelihood_differs", ["--workdir={trained}", TOY, "--config.model.nf=32",
                                    "--mode=likelihood"], "--config.model.nf=16"),
    ("workdir_eval_differs", ["--workdir={trained}", TOY, "--config.sde.beta_max=10.0",
                              "--mode=eval"], "sde.beta_max"),
    ("workdir_resume_differs", ["--workdir={trained}", "--config.model.num_layers=2"],
     "model.num_layers"),
    ("workdir_is_file", ["--workdir={file}", TOY], "is a file"),
    ("sample_untrained", ["--workdir={new}", TOY, "--mode=sample"], "--mode=train"),
    ("import_without_path", ["--workdir={new}", TOY, "--mode=import"], "eval.import_path"),
    ("import_into_trained", ["--workdir={trained}", "--mode=import",
                             "--config.eval.import_path=configs/toy.py"], "not empty"),
    ("import_npz", ["--workdir={new}", TOY, "--mode=import",
                    "--config.eval.import_path={npz}"], "checkpoint_N"),
    # Missing data and weights
    ("tfds_not_prepared", ["--workdir={new}", DIGITS, "--config.data.dataset=cifar10",
                           "--config.data.data_dir=/nonexistent"], "data.data_dir"),
    ("inception_weights", ["--workdir={new}", GMM, "--config.eval.features=inception",
                           "--mode=eval"], "--config.eval.inception_weights"),
    ("no_classifier", ["--workdir={trained}", "--mode=sample",
                       "--config.sampling.guidance.method=classifier"], "--mode=train_classifier"),
    # Conditioning settings
    ("cfg_negative_scale", ["--workdir={new}", GMM, "--config.model.class_conditional=True",
                            "--config.sampling.guidance.method=cfg",
                            "--config.sampling.guidance.scale=-1.0", "--mode=sample"],
     "--config.sampling.guidance.scale"),
    ("class_label_range", ["--workdir={new}", GMM, "--config.sampling.guidance.method=classifier",
                           "--config.sampling.guidance.class_label=7", "--mode=sample"],
     "sampling.guidance.class_label"),
    ("mask_path_unset", ["--workdir={new}", GMM, "--config.sampling.task=inpaint",
                         "--config.sampling.inverse.mask=file", "--mode=sample"],
     "--config.sampling.inverse.mask_path"),
    ("inpaint_with_ode", ["--workdir={new}", GMM, "--config.sampling.task=inpaint",
                          "--config.sampling.method=ode", "--mode=sample"], "sampling.method"),
    ("noisy_replacement", ["--workdir={new}", GMM, "--config.sampling.task=inpaint",
                           "--config.sampling.inverse.observation_noise=0.1", "--mode=sample"],
     "pigdm"),
    ("train_analytic", ["--workdir={new}", GMM], "nothing to train"),
    ("train_classifier_analytic", ["--workdir={new}", GMM, "--mode=train_classifier"],
     "nothing to train"),
    # Training that diverges
    ("nan_loss", ["--workdir={new}", TOY, "--config.optim.lr=1e30", "--config.optim.grad_clip=-1.0",
                  "--config.optim.warmup=0", "--config.training.n_iters=20",
                  "--config.training.log_freq=1"], "optim.lr"),
]
KEEPS_WORKDIR = {"nan_loss"}  # a run that started: its config.json stays
TWO_DEVICES = {"devices_training_batch", "devices_sampling_batch"}


@pytest.fixture(scope="module")
def cli():
  with MainProcesses() as processes:
    yield processes


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
  """{trained}: a toy workdir trained for 2 steps; {file}: a file; {npz}: an .npz file."""
  root = tmp_path_factory.mktemp("cli")
  trained = root / "trained"
  workflows.train(load_config("configs/toy.py:swiss_roll,vpsde", {
      "model.nf": 16, "training.n_iters": 2, "training.log_freq": 1, "training.snapshot_freq": 2,
      "training.snapshot_freq_for_preemption": 2, "training.batch_size": 8,
      "sampling.num_samples": 8, "sampling.batch_size": 8}), trained)
  (root / "a_file").write_text("not a directory")
  np.savez(root / "weights.npz", w=np.zeros(3))
  return {"trained": str(trained), "file": str(root / "a_file"), "npz": str(root / "weights.npz"),
          "root": root}


@pytest.mark.parametrize("name,args,fix", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_short_line_naming_the_fix(cli, paths, name, args, fix):
  new = paths["root"] / f"new_{name}"
  fill = lambda s: s.format(new=new, **{k: v for k, v in paths.items() if k != "root"})
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"} if name in TWO_DEVICES else {}
  result = cli.run(*map(fill, args), env=env)
  lines = result.error_lines
  assert result.returncode not in (0, None), (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert 1 <= len(lines) <= 3 and lines[-1].startswith("Error: "), lines
  assert fill(fix) in lines[-1], lines[-1]
  short = lines[-1].replace(str(paths["root"]), "R")  # pytest's paths are long, users' short
  assert len(short) <= MAX_LINE, f"{len(short)} characters: {short}"
  if name not in KEEPS_WORKDIR:
    assert not new.exists(), sorted(p.name for p in new.rglob("*"))


def test_the_table_covers_forty_inputs():
  assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)



def test_verbose_shows_the_traceback(cli, paths):
  result = cli.run(f"--workdir={paths['root'] / 'verbose'}", "--config=configs/toy.py:swiss_roll,ito",
                   "--verbose")
  assert result.returncode != 0 and "Traceback" in result.stderr and "UserError" in result.stderr


@pytest.mark.parametrize("raised,exit_code", [
    (KeyError("my_euler"), main.BUG_REPORT),  # a library bug: traceback and a request
    (UserError("sampling.foo=1 is bad; set --config.sampling.foo=2."),
     "Error: sampling.foo=1 is bad; set --config.sampling.foo=2. (--verbose shows the traceback)"),
    (Interrupted("Interrupted at step 7; saved; rerun the same command to resume.", 15), 143),
])
def test_main_reports_only_user_errors_on_one_line(monkeypatch, capsys, raised, exit_code):
  def mode(config, workdir):
    del config, workdir
    raise raised

  monkeypatch.setattr(main, "FLAGS", types.SimpleNamespace(
      distributed=False, mode="sample", config=None, workdir="w", verbose=False))
  monkeypatch.setitem(workflows.MODES, "sample", mode)
  with pytest.raises(SystemExit) as stop:
    main.main(["main.py"])
  assert stop.value.code == exit_code
  stderr = capsys.readouterr().err
  assert ("Traceback" in stderr and "KeyError: 'my_euler'" in stderr) == isinstance(raised, KeyError)
