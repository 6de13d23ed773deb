"""Config sections shared by the families (declared once here), and settings that go with an SDE.

Each *_section(**values) returns the section with every key at its default, `values` overriding
some (an unknown key raises). The sampling section holds, besides the keys below, every keyword
option of every registered solver at its signature's default (samplers.solvers), so a new
solver's options need no config edit; guidance and inverse-problem keys are grouped under
sampling.guidance.* and sampling.inverse.*.
"""
import ml_collections
from ml_collections import config_dict

from samplers import grids, solvers


def _with_values(section: ml_collections.ConfigDict, values: dict) -> ml_collections.ConfigDict:
  for key, value in values.items():
    if key not in section:
      raise KeyError(f"No key {key!r} in this section; valid: {sorted(section)}.")
    section[key] = value
  return section


def _solver_options() -> ml_collections.ConfigDict:
  """Every solver's keyword options at their defaults (None: a typed placeholder, unset)."""
  options = ml_collections.ConfigDict()
  for key, value in sorted((solvers.all_option_defaults() | grids.grid_option_defaults()).items()):
    options[key] = config_dict.placeholder(bool) if value is None else value
  return options


def guidance_section() -> ml_collections.ConfigDict:
  g = ml_collections.ConfigDict()
  g.method = "none"                             # conditioning.GUIDANCE: none | classifier (Sec. 5) | cfg (Ho & Salimans 2022)
  g.class_label = -1                            # class to sample (-1: all in turn, i % num_classes)
  g.scale = 1.0                                 # classifier scale lambda (1: the paper) or CFG weight w (0: conditional)
  g.classifier_workdir = ""                     # classifier: workdir of --mode=train_classifier ("": WORKDIR/classifier)
  return g


def inverse_section(mask: str = "box") -> ml_collections.ConfigDict:
  i = ml_collections.ConfigDict()
  i.method = "replacement"                      # conditioning.INVERSE_METHODS: replacement (the paper) | pigdm | dps
                                                # (RePaint: replacement with --config.sampling.method=repaint)
  i.mask = mask                                 # inpaint: box | half | random | file (images); coords | random | file (points)
  i.mask_box_size = 0                           # mask=box: side of the hidden square (0: half the image size)
  i.mask_box_top = -1                           # mask=box: its top row (-1: centred)
  i.mask_box_left = -1                          # mask=box: its left column (-1: centred)
  i.mask_fraction = 0.5                         # mask=random: probability that a pixel / coordinate is observed
  i.mask_seed = 0                               # mask=random: seed of that draw
  i.mask_path = ""                              # mask=file: PNG (nonzero = observed) or .npz (array 'mask')
  i.observed_coords = (0,)                      # mask=coords: observed coordinates of low-dimensional data
  i.sr_factor = 2                               # super_resolution: average-pooling factor of y = pool(x)
  i.inputs_from = "test"                        # test: the first num_inputs test examples | file: inputs_path
  i.inputs_path = ""                            # inputs_from=file: .npz (array 'inputs' or its first) or one PNG
  i.num_inputs = 8                              # K: inputs (observations) sampled for
  i.samples_per_input = 4                       # samples drawn per input
  i.observation_noise = 0.0                     # std sigma_y of y = A x + sigma_y n (> 0: pigdm or dps only)
  i.scale = 1.0                                 # pigdm / dps: scale of the likelihood guidance (1: the posterior)
  return i


def sampling_section(mask: str = "box", **values) -> ml_collections.ConfigDict:
  s = _solver_options()
  s.method = "pc"                               # samplers.SOLVERS (options: the keys of its signature)
  s.num_steps = 1000                            # grid steps of every solver but ode (PC: the paper's N)
  s.grid = "uniform"                            # samplers.GRIDS: uniform | edm | logsnr | quadratic | time_quadratic | ays
  s.eps = 1e-5                                  # sampling stops at t = eps (VE 1e-5, VP/sub-VP 1e-3)
  s.noise_removal = True                        # return the noise-free mean / D(x, eps) at the last step
  s.num_samples = 50_000                        # samples written by --mode=sample (FID uses 50k)
  s.batch_size = 1024                           # samples per jitted call (global, split over devices)
  s.task = "unconditional"                      # workflows.sample.TASKS: unconditional | inpaint | colorize | super_resolution
  s.latents_from = ""                           # latents.npz of --mode=encode to decode instead of prior draws
  s.interpolate = 0                             # latents_from: K > 0 decodes K slerp points between latents 2i and 2i + 1
  s.guidance = guidance_section()               # label conditions, any task
  s.inverse = inverse_section(mask)             # observation conditions: tasks inpaint | colorize | super_resolution
  return _with_values(s, values)


def schedule_section(**values) -> ml_collections.ConfigDict:
  """--mode=schedule: a time schedule for config.sampling's solver and num_steps, written to
  workdir/schedules/NAME.json (sample with --config.sampling.grid=file
  --config.sampling.grid_path=NAME)."""
  c = ml_collections.ConfigDict()
  c.method = "gits"                             # gits (dynamic programming, Chen et al. 2024) | learned (LD3-style)
  c.name = ""                                   # file name ("": METHOD_SOLVER_NUMSTEPS)
  c.num_samples = 256                           # prior draws the schedule is fitted on (as many again held out)
  c.fine_steps = 64                             # fine grid (edm, sampling.grid_rho) of the teacher and of GITS's choices
  c.teacher = "heun"                            # the teacher's solver (samplers.SOLVERS, deterministic)
  c.teacher_substeps = 4                        # teacher steps per fine interval
  c.loss = "l2"                                 # distance to the teacher: l2 (data space) | features (eval.features' network)
  c.iterations = 200                            # learned: Adam steps on the schedule's logits
  c.learning_rate = 0.05                        # learned: Adam's step size
  c.save_every = 20                             # learned: iterations between saved states (resume)
  return _with_values(c, values)


def ems_section(**values) -> ml_collections.ConfigDict:
  """--mode=ems: DPM-Solver-v3's empirical model statistics, written to workdir/ems/NAME.npz
  (sample with --config.sampling.method=dpm_solver_v3 --config.sampling.ems=NAME)."""
  c = ml_collections.ConfigDict()
  c.name = ""                                   # file name ("": EPS_NODES_DATA, as the official statistics folders)
  c.num_nodes = 1200                            # lambda intervals from lambda(T) to lambda(sampling.eps) (the paper: 1200 below 10 NFE, 120 from 10)
  c.num_data = 1024                             # training examples the statistics average over (the paper: 1024 or 4096)
  c.batch_size = 1024                           # examples per jitted call (global, split over devices)
  c.save_every = 50                             # nodes between saved states (resume)
  return _with_values(c, values)


def eval_section(**values) -> ml_collections.ConfigDict:
  e = ml_collections.ConfigDict()
  e.likelihood = "ode"                          # --mode=likelihood: ode (exact PF-ODE) | elbo (continuous bound) | elbo_discrete (the discrete chain's)
  e.elbo_draws = 64                             # elbo / elbo_discrete: Monte Carlo draws of t (or level) per example
  e.elbo_t_sampling = "log_snr"                 # elbo: t drawn uniform in log SNR (importance sampling) | uniform
  e.dequantization = "uniform"                  # images: uniform (pixels + U[0, 1)) | truncated_normal (i-DODE, likelihood=ode)
  e.tn_tau = 3.0                                # truncated_normal: eps ~ TN(-tau, tau); the ODE starts where sigma = half a bin / tau
  e.trace_estimator = "rademacher"              # exact | gaussian | rademacher (Hutchinson)
  e.rtol = 1e-5                                 # likelihood ODE relative tolerance
  e.atol = 1e-5                                 # likelihood ODE absolute tolerance
  e.eps = 1e-5                                  # likelihood ODE start time
  e.num_samples = 10_000                        # test examples for --mode=likelihood (at most all)
  e.batch_size = 1024                           # examples per jitted likelihood call
  e.bpd_num_repeats = 5                         # images: dequantisation repeats of the bits/dim
  e.features = "inception"                      # --mode=eval metrics on: identity (points) | digits | inception
  e.inception_weights = ""                      # pytorch-fid's pt_inception-2015-12-05-*.pth or .safetensors
  e.stats_path = ""                             # reference mu/sigma npz (--mode=fid_stats); "": from the data
  e.reference_split = "train"                   # split of the reference statistics and KID features
  e.kid_examples = 10_000                       # real examples whose features KID compares with (0: no KID)
  e.reference_examples = 0                      # examples of reference_split for the statistics (0: all)
  e.num_generated = 50_000                      # samples per checkpoint for the metrics (released num_samples)
  e.seeds = ()                                  # --mode=eval: sample each checkpoint under these seeds (empty: the config's seed); rows per seed + mean/std/min
  e.bootstrap = 200                             # --mode=eval with several seeds: resamples of the bootstrap 95% interval of FD at the first seed (0: none)
  e.begin_ckpt = 1                              # --mode=eval: first checkpoint step of the sweep
  e.end_ckpt = -1                               # --mode=eval: last checkpoint step (-1: the newest)
  e.enable_sampling = True                      # --mode=eval: sample and compute FID / IS / KID
  e.enable_bpd = True                           # --mode=eval: bits/dim of the held-out split
  e.import_path = ""                            # --mode=import: checkpoint_N file or diffusers dir
  return _with_values(e, values)


def classifier_section(**values) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "wrn"                                # models.CLASSIFIERS: wrn (Wide-ResNet, images) | conv (small, digits) | mlp | gmm_analytic
  c.blocks_per_group = 4                        # wrn: residual blocks per group (released: 4, WRN-28)
  c.channel_multiplier = 10                     # wrn: width multiplier k (released: 10)
  c.nf = 32                                     # conv / mlp: base channels (width)
  c.num_layers = 3                              # mlp: residual blocks
  c.noise_input = "auto"                        # log_sigma (Fourier features of log sigma(t)) | time (of t) | auto (the SDE's choice)
  c.fourier_scale = 16.0                        # scale of the random Fourier features
  c.n_iters = 200_000                           # --mode=train_classifier steps (logs, snapshots: training.*)
  c.batch_size = 128                            # classifier training batch (global)
  c.lr = 2e-4                                   # classifier peak learning rate (optimizer: optim.*)
  c.warmup = 5000                               # classifier linear warm-up steps
  c.eps = 1e-5                                  # smallest training time: t ~ U(eps, T)
  return _with_values(c, values)


def optim_section(**values) -> ml_collections.ConfigDict:
  o = ml_collections.ConfigDict()
  o.optimizer = "adam"                          # adam | adamw
  o.lr = 2e-4                                   # peak learning rate
  o.beta1 = 0.9                                 # Adam beta1
  o.eps = 1e-8                                  # Adam epsilon
  o.weight_decay = 0.0                          # decoupled weight decay (adamw)
  o.warmup = 5000                               # linear warm-up steps
  o.grad_clip = 1.0                             # global-norm clipping threshold (< 0: off)
  return _with_values(o, values)


def apply_sde(config, sde: str):
  """Sets config.sde.name and what goes with each SDE: VE networks see log sigma and divide by
  sigma (NCSN); EDM (Karras et al. 2022) uses its preconditioning, loss, grid and Heun sampler."""
  config.sde.name = sde
  if sde == "vesde":
    config.model.embedding_type = "fourier"
    config.model.scale_by_sigma = True
  if sde == "edm":
    config.sde.sigma_min, config.sde.sigma_max = 0.002, 80.0
    config.model.parameterization = "edm"
    config.training.loss = "edm"
    config.sampling.method, config.sampling.grid, config.sampling.num_steps = "heun", "edm", 18
    config.sampling.eps = config.eval.eps = config.sde.sigma_min
  return config
