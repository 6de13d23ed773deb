"""Evaluation: feature networks (the FID Inception, a digits CNN) and metrics (FID, IS, KID; SAMPLE_METRICS runs them on samples).

Nothing is downloaded at run time, and the library needs no torch: pytorch-fid's network, which
tests and benchmarks compare against, is built by tests/torch_reference.py.
"""
from evaluation.cache import cache_dir
from evaluation.digits_features import (DigitsNet, DigitsOutputs, digits_accuracy, digits_input,
                                        digits_inception_score, digits_outputs,
                                        frechet_digits_distance, load_digits_net, make_digits_fn,
                                        train_digits_net)
from evaluation.inception import (RESIZE_RULE, FIDInceptionV3, InceptionOutputs, inception_input,
                                  make_inception_fn)
from evaluation.inception_weights import (WEIGHTS_URL, find_weights, load_inception_variables,
                                          read_state_dict, torch_to_flax_variables)
from evaluation.metrics import (frechet_bootstrap_interval, frechet_distance, inception_score,
                                kernel_inception_distance, log_softmax, precision_recall)
from evaluation.preprocess import INPUT_RANGES, resize_bilinear, to_unit_interval
from evaluation.sample_metrics import (SAMPLE_METRICS, ReferenceFeatures, SampleFeatures,
                                       sample_metric_columns)
from evaluation.stats import FeatureStats, ReferenceStats, load_stats, save_stats

__all__ = [
    "INPUT_RANGES", "RESIZE_RULE", "SAMPLE_METRICS", "ReferenceFeatures", "SampleFeatures",
    "sample_metric_columns", "WEIGHTS_URL", "DigitsNet", "DigitsOutputs", "FIDInceptionV3",
    "FeatureStats", "InceptionOutputs", "ReferenceStats", "cache_dir", "digits_accuracy",
    "digits_inception_score", "digits_input", "digits_outputs", "find_weights", "frechet_digits_distance",
    "frechet_bootstrap_interval", "frechet_distance", "inception_input", "inception_score", "kernel_inception_distance",
    "load_digits_net", "load_inception_variables", "load_stats", "log_softmax", "make_digits_fn",
    "make_inception_fn", "precision_recall", "read_state_dict", "resize_bilinear", "save_stats", "to_unit_interval",
    "torch_to_flax_variables", "train_digits_net",
]
