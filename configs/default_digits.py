"""Complete default config for scikit-learn's 8x8 handwritten digits (offline, 1797 images).

A small NCSN++ / DDPM++ that trains on 2 CPU cores in minutes. Variants: configs/digits.py.
Run: python main.py --config=configs/digits.py:vpsde --workdir=workdirs/digits_vp --mode=train
"""
from configs.default_cifar10 import get_default_configs as image_defaults


def get_default_configs():
  config = image_defaults()  # every image key, commented there; digits-specific values below

  training = config.training
  config.sde.name = "vpsde"
  training.continuous = True
  training.reduce_mean = True
  training.eps = 1e-5
  training.batch_size = 128
  training.n_iters = 2000
  training.log_freq = 100
  training.snapshot_freq = 1000
  training.snapshot_freq_for_preemption = 250
  training.sample_freq = 500

  sampling = config.sampling
  # A 20-NFE stochastic solver (about 3 s for 64 samples on 2 CPU cores): on these small models it
  # matches the paper's PC (reverse diffusion + Langevin, 2000 NFE, about 130 s), which stays one
  # override away: --config.sampling.method=pc --config.sampling.grid=uniform
  # --config.sampling.num_steps=1000.
  sampling.method = "dpm_solver_sde_2m"
  sampling.grid = "logsnr"
  sampling.num_steps = 20
  sampling.predictor = "reverse_diffusion"     # method=pc: the paper's predictor and corrector
  sampling.corrector = "langevin"
  sampling.snr = 0.16
  sampling.eps = 1e-3
  sampling.num_samples = 64
  sampling.batch_size = 64

  ems = config.ems                             # --mode=ems (DPM-Solver-v3): the paper's coarse nodes
  ems.num_nodes = 120
  ems.num_data = 512
  ems.batch_size = 512

  evaluate = config.eval
  evaluate.trace_estimator = "gaussian"        # Hutchinson: exact traces cost 64 JVPs per step
  evaluate.num_samples = 128
  evaluate.batch_size = 128
  evaluate.features = "digits"                 # the offline digits CNN (evaluation.digits_features)
  evaluate.num_generated = 1024
  evaluate.kid_examples = 1000
  evaluate.bpd_num_repeats = 1

  data = config.data
  data.dataset = "digits"
  data.image_size = 8                          # native 8x8; larger sizes are bilinear upsamples
  data.num_channels = 1
  data.centered = True
  data.uniform_dequantization = False
  data.random_flip = False                     # digits are not mirror-symmetric

  model = config.model
  model.name = "ncsnpp"
  model.nf = 32                                # base channel count
  model.ch_mult = (1, 2)                       # channel multiplier per resolution (8x8, 4x4)
  model.num_res_blocks = 2                     # residual blocks per resolution
  model.attn_resolutions = (4,)                # resolutions with self-attention
  model.dropout = 0.0                          # dropout in residual blocks
  model.resamp_with_conv = True                # convolutional up/down-sampling
  model.conditional = True                     # condition on the noise level
  model.fir = False                            # FIR up/down-sampling (slow on CPU, small gain at 8x8)
  model.fir_kernel = (1, 3, 3, 1)              # FIR kernel
  model.skip_rescale = True                    # divide skip sums by sqrt(2)
  model.resblock_type = "biggan"               # ddpm | biggan
  model.progressive = "none"                   # none | output_skip | residual
  model.progressive_input = "residual"         # none | input_skip | residual
  model.progressive_combine = "sum"            # sum | cat
  model.embedding_type = "positional"          # fourier (VE) | positional (VP)
  model.fourier_scale = 16.0                   # Gaussian Fourier projection scale
  model.init_scale = 0.0                       # output-layer init scale
  model.nonlinearity = "swish"                 # activation
  model.scale_by_sigma = False                 # set for VE in configs/digits.py
  config.sde.sigma_min = 0.01
  config.sde.sigma_max = 20.0  # VE: about the max distance between training images
  config.sde.beta_min = 0.1
  config.sde.beta_max = 20.0
  config.sde.num_scales = 1000
  config.training.ema_rate = 0.995  # short runs: 0.999 would keep much of the random init

  optim = config.optim
  optim.lr = 1e-3
  optim.warmup = 200

  classifier = config.classifier               # --mode=train_classifier: about 2 min on 2 CPU cores
  classifier.name = "conv"
  classifier.nf = 32
  classifier.n_iters = 2000
  classifier.batch_size = 128
  classifier.lr = 2e-3
  classifier.warmup = 20
  return config
