"""Samplers: time grids, predictor-corrector, the probability-flow ODE, fast solvers and
likelihoods (Song et al. 2021, Sec. 4; docs/design.md: grid x parameterisation x solver).

Every registry maps a name to its implementation; each get_* raises UserError listing the
valid names. All samplers query a ModelFns, take per-sample keys and report their NFE.
"""
from samplers.correctors import CORRECTORS, Corrector, get_corrector
from samplers.grids import GRIDS, get_grid, grid_option_defaults, grid_options, make_grid
from samplers.likelihood import (TRACE_ESTIMATORS, TraceEstimator, bits_per_dim,
                                 get_trace_estimator, log_likelihood, nats_per_dim)
from samplers.model_fns import ModelFns
from samplers.ode import ODE_SOLVERS, flow_drift, get_ode_solver, integrate, ode_sample
from samplers.pc import PCSteps, pc_nfe, pc_sample, pc_steps
from samplers.per_sample_keys import (per_sample_normal, per_sample_prior, per_sample_uniform,
                                      sample_keys, step_keys)
from samplers.predictors import PREDICTORS, Predictor, get_predictor
from samplers.solvers import SOLVERS, Solver, get_solver, solver_options

__all__ = ["CORRECTORS", "Corrector", "GRIDS", "ModelFns", "ODE_SOLVERS", "PCSteps", "PREDICTORS",
           "Predictor", "SOLVERS", "Solver", "TRACE_ESTIMATORS", "TraceEstimator", "bits_per_dim",
           "flow_drift", "get_corrector", "get_grid", "grid_option_defaults", "grid_options", "get_ode_solver", "get_predictor",
           "get_solver", "get_trace_estimator", "solver_options", "integrate", "log_likelihood", "make_grid",
           "nats_per_dim", "ode_sample", "pc_nfe", "pc_sample", "pc_steps", "per_sample_normal",
           "per_sample_prior", "per_sample_uniform", "sample_keys", "step_keys"]
