"""Samplers: predictor-corrector, probability-flow ODE and likelihoods (Song et al. 2021, Sec. 4).

Every registry maps a name to its implementation; each get_* raises ValueError listing the
valid names. All samplers take per-sample keys (samplers.noise) and report their NFE.
"""
from samplers.correctors import CORRECTORS, Corrector, get_corrector
from samplers.likelihood import (TRACE_ESTIMATORS, TraceEstimator, bits_per_dim,
                                 get_trace_estimator, log_likelihood, nats_per_dim)
from samplers.noise import per_sample_normal, per_sample_prior, sample_keys, step_keys
from samplers.ode import ODE_SOLVERS, flow_drift, get_ode_solver, integrate, ode_sample
from samplers.pc import pc_nfe, pc_sample
from samplers.predictors import PREDICTORS, Predictor, get_predictor

__all__ = ["CORRECTORS", "Corrector", "ODE_SOLVERS", "PREDICTORS", "Predictor", "TRACE_ESTIMATORS",
           "TraceEstimator", "bits_per_dim", "flow_drift", "get_corrector", "get_ode_solver",
           "get_predictor", "get_trace_estimator", "integrate", "log_likelihood", "nats_per_dim",
           "ode_sample", "pc_nfe", "pc_sample", "per_sample_normal", "per_sample_prior",
           "sample_keys", "step_keys"]
