"""Complete default config for CIFAR-10 (32x32): every key, each with its meaning.

Values follow the released score_sde code (configs/default_cifar10_configs.py); the model section
is NCSN++ with the VE SDE (configs/ve/ncsnpp_cifar10_continuous.py), and holds every key of every
image network (NCSN++/DDPM++, DDPM, NCSNv2, NCSN). Variants in configs/{ve,vp,subvp}/ override
what differs. Run: python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ve --mode=train
Prepare the data once where there is network access (then copy DIR to the training machines):
  python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py --workdir=workdirs/prep \
    --mode=prepare --config.data.data_dir=DIR
"""
import ml_collections

from configs import common


def get_default_configs() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 42                              # base PRNG seed (training, sampling, probes)

  config.sde = sde = ml_collections.ConfigDict()
  sde.name = "vesde"                            # sde_lib.SDES: vesde | vpsde | subvpsde | edm
  sde.sigma_min = 0.01                          # VE / EDM smallest noise level
  sde.sigma_max = 50.0                          # VE / EDM largest (about the max distance between images)
  sde.beta_min = 0.1                            # VP / sub-VP beta(0)
  sde.beta_max = 20.0                           # VP / sub-VP beta(1)
  sde.num_scales = 1000                         # N: noise levels of discrete-time training and labels

  config.training = training = ml_collections.ConfigDict()
  training.continuous = True                    # continuous-time DSM; False: SMLD (VE) / DDPM (VP)
  training.reduce_mean = False                  # average the loss over data dims (else sum)
  training.likelihood_weighting = False         # weight DSM by g(t)^2 (likelihood bound)
  training.importance_sampling = False          # with likelihood_weighting: t ~ g^2 / s^2 (ScoreFlow), same loss in expectation, lower variance
  training.output_weighting = False             # weight DSM so the network output's own error counts (v_prediction: the v loss)
  training.eps = 1e-5                           # smallest training time: t ~ U(eps, T)
  training.batch_size = 128                     # global batch, split over all devices and hosts
  training.n_iters = 1_300_000                  # total training steps
  training.steps_per_call = 1                   # train steps per jitted call (released: 5, on TPU)
  training.log_freq = 50                        # steps between logged metrics
  training.snapshot_freq = 50_000               # steps between kept checkpoints
  training.snapshot_freq_for_preemption = 10_000  # steps between rolling (latest-only) checkpoints
  training.max_to_keep = 1                      # rolling checkpoints kept besides the snapshot ones
  training.sample_freq = 50_000                 # steps between sample grids in TensorBoard (0: none)
  training.ema_rate = 0.999                     # EMA decay of the parameters used for sampling
  training.loss = "dsm"                         # dsm (the paper's; discrete if not continuous) | edm
  training.edm_p_mean = -1.2                    # loss=edm: ln(sigma) ~ N(p_mean, p_std^2)
  training.edm_p_std = 1.2                      # loss=edm
  training.label_dropout = 0.1                  # model.class_conditional: probability of the null label (CFG)
  training.remat = False                        # recompute residual blocks in the backward pass (less memory)

  config.sampling = sampling = common.sampling_section()  # samplers: configs/common.py
  sampling.corrector = "langevin"               # samplers.CORRECTORS: langevin (released) | langevin_per_sample |
                                                # mala | ald | none
  config.schedule = common.schedule_section()
  config.ems = common.ems_section()
  config.eval = common.eval_section()

  config.data = data = ml_collections.ConfigDict()
  data.dataset = "cifar10"                      # data_sources.DATASETS
  data.image_size = 32                          # side of the (centre-cropped, resized) images
  data.num_channels = 3                         # colour channels
  data.centered = False                         # scale pixels to [-1, 1] (else [0, 1])
  data.uniform_dequantization = False           # add U[0,1) noise to pixel values (likelihood runs)
  data.random_flip = True                       # random horizontal flips
  data.data_dir = ""                            # TFDS data_dir of the prepared dataset ("": default)
  data.image_folder = ""                        # dataset=image_folder / --mode=prepare: tree of PNG/JPEG, classes = subfolders
  data.num_workers = 0                          # grain worker processes decoding batches (0: in the training process)
  data.prefetch = 2                             # batches prepared ahead (per worker; threads if num_workers=0)
  data.num_classes = 10                         # classes of the labels (TFDS label feature, image_folder subfolders)

  config.model = model = ml_collections.ConfigDict()
  model.name = "ncsnpp"                         # models.NETWORKS: ncsnpp (NCSN++, DDPM++) | ddpm | ncsnv2 | ncsn
  model.parameterization = "score_sde"          # models.PARAMETERIZATIONS, or score_sde: the released
                                                # convention of the SDE (vp/ve_continuous/_discrete)
  model.sigma_data = 0.5                        # parameterization=edm: data std sigma_data
  model.scale_by_sigma = True                   # VE: divide the network output by sigma(t)
  model.dropout = 0.1                           # dropout in residual blocks (U-Nets)
  model.nf = 128                                # base channel count
  model.ch_mult = (1, 2, 2, 2)                  # U-Nets: channel multiplier per resolution
  model.num_res_blocks = 4                      # U-Nets: residual blocks per resolution
  model.attn_resolutions = (16,)                # U-Nets: resolutions with self-attention
  model.resamp_with_conv = True                 # U-Nets: convolutional up/down-sampling
  model.conditional = True                      # U-Nets: condition on the noise level
  model.fir = True                              # NCSN++: FIR up/down-sampling (StyleGAN2)
  model.fir_kernel = (1, 3, 3, 1)               # NCSN++: FIR kernel
  model.skip_rescale = True                     # NCSN++: divide skip sums by sqrt(2)
  model.resblock_type = "biggan"                # NCSN++: ddpm | biggan
  model.progressive = "none"                    # NCSN++ output path: none | output_skip | residual
  model.progressive_input = "residual"          # NCSN++ input path: none | input_skip | residual
  model.progressive_combine = "sum"             # NCSN++: sum | cat
  model.embedding_type = "fourier"              # NCSN++: fourier (log sigma) | positional (999 t, index)
  model.fourier_scale = 16.0                    # NCSN++: Gaussian Fourier projection scale
  model.init_scale = 0.0                        # NCSN++: init scale of the last conv of each block
  model.nonlinearity = "swish"                  # activation: swish (U-Nets) | elu (NCSN, NCSNv2)
  model.normalization = "GroupNorm"             # NCSN / NCSNv2 norm (the U-Nets use GroupNorm)
  model.interpolation = "bilinear"              # NCSN / NCSNv2 RefineBlock upsampling
  model.num_classes = config.sde.get_ref("num_scales")  # NCSN v1: one norm-parameter row per scale (= N)
  model.class_conditional = False               # NCSN++ / DDPM: class-label embedding (data.num_classes + null) for CFG
  model.dtype = "float32"                       # activations: float32 | bfloat16 (params, loss, Adam: float32)

  config.classifier = common.classifier_section()
  config.optim = common.optim_section()
  return config
