"""Complete default config for 2-D toy data: every key, each with its meaning.

Variants (configs/toy.py, configs/gmm_analytic.py) import this and override what differs.
Run: python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss_vp --mode=train
"""
import ml_collections

from configs import common


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
  training.importance_sampling = False          # with likelihood_weighting: t ~ g^2 / s^2 (ScoreFlow), same loss in expectation, lower variance
  training.output_weighting = False             # weight DSM so the network output's own error counts (v_prediction: the v loss)
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

  # 10 dpm_solver_2m steps on the quadratic grid matched PC-1000's error on the exact mixture
  # (benchmarks/quality_vs_nfe.py); the paper's PC: --config.sampling.method=pc.
  config.sampling = common.sampling_section(
      mask="coords", method="dpm_solver_2m", num_steps=10, grid="quadratic", eps=1e-3,
      num_samples=2000, batch_size=1000)
  config.schedule = common.schedule_section()
  config.ems = common.ems_section()
  config.eval = common.eval_section(
      trace_estimator="exact", num_samples=1000, batch_size=500, bpd_num_repeats=1,
      features="identity", kid_examples=1000, num_generated=2000, enable_bpd=False)

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

  config.classifier = common.classifier_section(
      name="mlp", nf=128, n_iters=2000, batch_size=512, lr=2e-3, warmup=100)
  config.optim = common.optim_section(lr=2e-3, warmup=100)
  return config

