"""Complete default config for 2-D toy data: every key, each with its meaning.

Variants (configs/toy.py, configs/gmm_analytic.py) import this and override what differs.
Run: python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss_vp --mode=train
"""
import ml_collections


def get_default_configs() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 42                              # base PRNG seed (training, sampling, probes)

  config.sde = sde = ml_collections.ConfigDict()
  sde.name = "vpsde"                            # sde_lib.SDES: vesde | vpsde | subvpsde | edm
  sde.sigma_min = 0.01                          # VE / EDM smallest noise level
  sde.sigma_max = 5.0                           # VE / EDM largest (about the data's max pairwise distance)
  sde.beta_min = 0.1                            # VP / sub-VP beta(0)
  sde.beta_max = 20.0                           # VP / sub-VP beta(1)
  sde.num_scales = 1000                         # N: noise levels of discrete-time training and labels

  config.training = training = ml_collections.ConfigDict()
  training.continuous = True                    # continuous-time DSM; False: SMLD (VE) / DDPM (VP) loss
  training.reduce_mean = True                   # average the loss over data dims (else sum)
  training.likelihood_weighting = False         # weight DSM by g(t)^2 (likelihood bound, Sec. 4 / Song et al. 2021b)
  training.eps = 1e-5                           # smallest training time: t ~ U(eps, T)
  training.batch_size = 512                     # global batch, split over all devices and hosts
  training.n_iters = 4000                       # total training steps
  training.steps_per_call = 1                   # train steps fused in one jitted call (lax.scan)
  training.log_freq = 200                       # steps between logged metrics
  training.snapshot_freq = 2000                 # steps between kept checkpoints
  training.snapshot_freq_for_preemption = 500   # steps between rolling (latest-only) checkpoints
  training.max_to_keep = 1                      # rolling checkpoints kept besides the snapshot ones
  training.sample_freq = 0                      # steps between sample grids in TensorBoard (0: none)
  training.ema_rate = 0.999                     # EMA decay of the parameters used for sampling
  training.loss = "dsm"                         # dsm (the paper's; discrete if not continuous) | edm
  training.edm_p_mean = -1.2                    # loss=edm: ln(sigma) ~ N(p_mean, p_std^2)
  training.edm_p_std = 1.2                      # loss=edm
  training.label_dropout = 0.1                  # model.class_conditional: probability of the null label (CFG)

  config.sampling = sampling = ml_collections.ConfigDict()
  sampling.method = "dpm_solver_2m"             # samplers.SOLVERS: pc (the paper's) | ode | ddim | heun | euler |
                                                # dpm_solver_2m | dpm_solver_3m | dpm_solver_sde_2m | unipc
  sampling.num_steps = 10                       # grid steps of every solver but ode (PC: the paper's N = 1000);
                                                # 10 dpm_solver_2m steps on the quadratic grid matched PC-1000's
                                                # error on the exact mixture (benchmarks/quality_vs_nfe.py)
  sampling.grid = "quadratic"                   # samplers.GRIDS: uniform (PC's) | edm | logsnr | quadratic
  sampling.grid_rho = 7.0                       # grid=edm: rho of the sigma spacing
  sampling.predictor = "reverse_diffusion"      # euler_maruyama | reverse_diffusion | ancestral_sampling | none
  sampling.corrector = "none"                   # samplers.CORRECTORS: langevin (released) |
                                                # langevin_per_sample | mala | ald | none
  sampling.snr = 0.16                           # Langevin signal-to-noise ratio (Alg. 4/5)
  sampling.n_steps_each = 1                     # corrector steps per predictor step
  sampling.noise_removal = True                 # return the noise-free mean at the last step
  sampling.probability_flow = False             # PC predictor on the probability-flow ODE
  sampling.eta = 0.0                            # ddim: 0 deterministic, 1 ancestral (DDPM)
  sampling.s_churn = 0.0                        # heun / euler: EDM stochastic churn (0: ODE)
  sampling.s_tmin = 0.0                         # heun / euler: churn only for noise levels >= s_tmin
  sampling.s_tmax = 1e9                         # heun / euler: ... and <= s_tmax
  sampling.s_noise = 1.0                        # heun / euler: churn noise inflation
  sampling.solver_order = 2                     # unipc: order p of UniP-p / UniC-p (1-3; accuracy p + 1)
  sampling.unipc_variant = "bh2"                # unipc: B(h) = e^h - 1 (bh2) | h (bh1) (Zhao et al. 2023)
  sampling.lower_order_final = True             # dpm_solver_* / unipc: lower-order last steps if < 15 steps
  sampling.official_3m = False                  # dpm_solver_3m: the official code's D2 weight (not 3rd order)
  sampling.ode_whole_batch = False              # ode: one adaptive solve for the whole batch
                                                # (released; couples samples) vs one per sample
  sampling.ode_solver = "dopri5"                # adaptive solver for method=ode (samplers.ODE_SOLVERS)
  sampling.rtol = 1e-5                          # ODE relative tolerance
  sampling.atol = 1e-5                          # ODE absolute tolerance
  sampling.eps = 1e-3                           # time at which sampling stops
  sampling.num_samples = 2000                   # samples written by --mode=sample
  sampling.batch_size = 1000                    # samples per jitted call (global, split over devices)
  sampling.task = "unconditional"               # workflows.sample.TASKS: unconditional | inpaint | colorize |
                                                # super_resolution | class_conditional (classifier guidance) | cfg
  sampling.class_label = -1                     # class_conditional / cfg: class to sample (-1: all in turn, i % num_classes)
  sampling.guidance_scale = 1.0                 # classifier scale lambda (1: the paper) or CFG weight w (0: conditional)
  sampling.classifier_workdir = ""              # class_conditional: workdir of --mode=train_classifier ("": --workdir)
  # Inverse problems (task inpaint | colorize | super_resolution; workflows/inverse.py):
  sampling.mask = "coords"                      # inpaint: box | half | random | file (images);
                                                # coords | random | file (points)
  sampling.mask_box_size = 0                    # mask=box: side of the hidden square (0: half the image size)
  sampling.mask_box_top = -1                    # mask=box: its top row (-1: centred)
  sampling.mask_box_left = -1                   # mask=box: its left column (-1: centred)
  sampling.mask_fraction = 0.5                  # mask=random: probability that a pixel / coordinate is observed
  sampling.mask_seed = 0                        # mask=random: seed of that draw
  sampling.mask_path = ""                       # mask=file: PNG (nonzero = observed) or .npz (array 'mask')
  sampling.observed_coords = (0,)               # mask=coords: the observed coordinates of the points
  sampling.sr_factor = 2                        # super_resolution: average-pooling factor of y = pool(x)
  sampling.inputs_from = "test"                 # test: the first num_inputs test examples | file: inputs_path
  sampling.inputs_path = ""                     # inputs_from=file: .npz (array 'inputs' or its first) or one PNG
  sampling.num_inputs = 8                       # K: inputs (observations) sampled for
  sampling.samples_per_input = 4                # samples drawn per input
  sampling.inverse_method = "replacement"       # conditioning.INVERSE_METHODS: replacement (the paper;
                                                # any grid solver) | repaint (method=pc) | pigdm | dps
  sampling.repaint_resamples = 10               # repaint: passes U per grid step (1: replacement)
  sampling.observation_noise = 0.0              # std sigma_y of y = A x + sigma_y n (> 0: pigdm or dps only)
  sampling.dps_scale = 1.0                      # pigdm / dps: scale of the likelihood guidance (1: the posterior)

  config.eval = evaluate = ml_collections.ConfigDict()
  evaluate.trace_estimator = "exact"            # exact | gaussian | rademacher (Hutchinson)
  evaluate.rtol = 1e-5                          # likelihood ODE relative tolerance
  evaluate.atol = 1e-5                          # likelihood ODE absolute tolerance
  evaluate.eps = 1e-5                           # likelihood ODE start time
  evaluate.num_samples = 1000                   # held-out examples evaluated by --mode=likelihood
  evaluate.batch_size = 500                     # examples per jitted likelihood call
  evaluate.bpd_num_repeats = 1                  # images: dequantisation repeats of the bits/dim
  evaluate.features = "identity"                # --mode=eval metrics on: identity (points) | digits | inception
  evaluate.inception_weights = ""               # pytorch-fid's pt_inception-2015-12-05-*.pth or .safetensors
  evaluate.stats_path = ""                      # reference mu/sigma npz (--mode=fid_stats); "": from the data
  evaluate.reference_split = "train"            # split of the reference statistics and KID features
  evaluate.kid_examples = 1000                  # real examples whose features KID compares with (0: no KID)
  evaluate.reference_examples = 0               # examples of reference_split for the statistics (0: all)
  evaluate.num_generated = 2000                 # samples per checkpoint for the metrics (released num_samples)
  evaluate.begin_ckpt = 1                       # --mode=eval: first checkpoint step of the sweep
  evaluate.end_ckpt = -1                        # --mode=eval: last checkpoint step (-1: the newest)
  evaluate.enable_sampling = True               # --mode=eval: sample and compute FID / IS / KID
  evaluate.enable_bpd = False                   # --mode=eval: bits/dim of the held-out split
  evaluate.import_path = ""                     # --mode=import: checkpoint_N file or diffusers dir

  config.data = data = ml_collections.ConfigDict()
  data.dataset = "swiss_roll"                   # data_sources.DATASETS
  data.data_seed = 0                            # seed of the generated toy splits
  data.num_train = 20000                        # size of the generated training split
  data.num_test = 2000                          # size of the generated held-out split
  data.centered = True                          # (images only) scale pixels to [-1, 1]
  data.uniform_dequantization = False           # (images only) add U[0,1) noise to pixel values
  data.random_flip = False                      # (images only) random horizontal flips
  data.num_workers = 0                          # (images only) grain worker processes (0: in the training process)
  data.prefetch = 2                             # (images only) batches prepared ahead (per worker)
  data.gmm_weights = (0.5, 0.5)                 # dataset=gmm: mixture weights (K,)
  data.gmm_means = ((-1.5, 0.0), (1.5, 0.5))    # dataset=gmm: means (K, D)
  data.gmm_covs = (((0.3, 0.1), (0.1, 0.2)), ((0.2, 0.0), (0.0, 0.5)))  # dataset=gmm: covariances (K, D, D)
  data.num_classes = 2                          # classes of the labels (gmm: K, the label is the component)

  config.model = model = ml_collections.ConfigDict()
  model.name = "mlp"                            # models.MODELS: mlp | gmm_analytic | image networks
  model.nf = 128                                # hidden width
  model.num_layers = 3                          # residual blocks
  model.embedding_type = "positional"           # fourier (log sigma, for VE) | positional (999 t)
  model.parameterization = "score_sde"          # models.PARAMETERIZATIONS, or score_sde: the released
                                                # convention of the SDE (vp/ve_continuous/_discrete)
  model.sigma_data = 0.5                        # parameterization=edm: data std sigma_data
  model.scale_by_sigma = False                  # VE: divide the network output by sigma(t)
  model.class_conditional = False               # class-label embedding (data.num_classes + null) for CFG

  config.classifier = classifier = ml_collections.ConfigDict()
  classifier.name = "mlp"                       # models.CLASSIFIERS: wrn (Wide-ResNet, images) | conv (small, digits) | mlp | gmm_analytic
  classifier.nf = 128                           # conv / mlp: width
  classifier.num_layers = 3                     # mlp: residual blocks
  classifier.noise_input = "auto"               # log_sigma (Fourier features of log sigma(t)) | time (of t) | auto (VE/EDM: log_sigma)
  classifier.fourier_scale = 16.0               # scale of the random Fourier features
  classifier.n_iters = 2000                     # --mode=train_classifier steps (logs, snapshots: training.*)
  classifier.batch_size = 512                   # classifier training batch (global)
  classifier.lr = 2e-3                          # classifier peak learning rate (optimizer: optim.*)
  classifier.warmup = 100                       # classifier linear warm-up steps
  classifier.eps = 1e-5                         # smallest training time: t ~ U(eps, T)

  config.optim = optim = ml_collections.ConfigDict()
  optim.optimizer = "adam"                      # adam | adamw
  optim.lr = 2e-3                               # peak learning rate
  optim.beta1 = 0.9                             # Adam beta1
  optim.eps = 1e-8                              # Adam epsilon
  optim.weight_decay = 0.0                      # decoupled weight decay (adamw)
  optim.warmup = 100                            # linear warm-up steps
  optim.grad_clip = 1.0                         # global-norm clipping threshold (< 0: off)
  return config

