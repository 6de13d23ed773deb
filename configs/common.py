"""Settings shared by the config families."""


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
