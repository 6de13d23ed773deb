"""Metrics of generated samples against the real data: SAMPLE_METRICS, name -> metric.

A metric is `metric(samples: SampleFeatures, reference: ReferenceFeatures) -> {column: value}`,
the columns it adds to a row of workdir/eval/metrics.jsonl, or {} when its input is absent (no
class probabilities for IS, no reference features for KID). --mode=eval runs every entry; a new
metric is one function plus one line here, and tests/test_sample_metrics.py runs its exact check.
"""
import dataclasses
from typing import Callable

import numpy as np

from evaluation.metrics import (frechet_distance, inception_score, kernel_inception_distance,
                                precision_recall)
from evaluation.stats import FeatureStats


@dataclasses.dataclass(frozen=True)
class SampleFeatures:
  features: np.ndarray            # (N, F) feature-network outputs of the samples
  probs: np.ndarray | None = None  # (N, K) its class probabilities, if it classifies


@dataclasses.dataclass(frozen=True)
class ReferenceFeatures:
  mu: np.ndarray                         # (F,) mean of the real data's features
  sigma: np.ndarray                      # (F, F) their covariance
  kid_features: np.ndarray | None = None  # (M, F) real features for KID, if kept


def frechet(samples: SampleFeatures, reference: ReferenceFeatures) -> dict:
  """`fd`: the Fréchet distance of the samples' feature Gaussian to the reference's (FID with
  Inception features; Heusel et al. 2017, eq. 6)."""
  stats = FeatureStats(samples.features.shape[1]).update(samples.features)
  return {"fd": float(frechet_distance(stats.mu, stats.sigma, reference.mu, reference.sigma))}


def inception(samples: SampleFeatures, reference: ReferenceFeatures) -> dict:
  """`is`, `is_std`: the Inception score over 10 splits (Salimans et al. 2016)."""
  del reference  # IS looks at the samples only
  if samples.probs is None:
    return {}
  score, std = inception_score(samples.probs)
  return {"is": score, "is_std": std}


def kernel(samples: SampleFeatures, reference: ReferenceFeatures) -> dict:
  """`kid_x1e3`, `kid_x1e3_std`: KID x 10^3, as commonly reported (Bińkowski et al. 2018), over
  subsets of min(1000, N, M) rows."""
  if reference.kid_features is None:
    return {}
  size = min(1000, len(samples.features), len(reference.kid_features))
  kid, std = kernel_inception_distance(samples.features, reference.kid_features,
                                       subset_size=size)
  return {"kid_x1e3": kid * 1e3, "kid_x1e3_std": std * 1e3}


def precision_and_recall(samples: SampleFeatures, reference: ReferenceFeatures) -> dict:
  """`precision`, `recall`: improved precision and recall, k = 3 (Kynkäänniemi et al. 2019),
  against the kept real features (eval.kid_examples of them)."""
  if reference.kid_features is None:
    return {}
  precision, recall = precision_recall(reference.kid_features, samples.features, k=3)
  return {"precision": precision, "recall": recall}


SAMPLE_METRICS: dict[str, Callable[[SampleFeatures, ReferenceFeatures], dict]] = {
    "fd": frechet,
    "is": inception,
    "kid": kernel,
    "precision_recall": precision_and_recall,
}


def sample_metric_columns(samples: SampleFeatures, reference: ReferenceFeatures) -> dict:
  """Every SAMPLE_METRICS entry's columns, in registry order."""
  return {k: v for metric in SAMPLE_METRICS.values() for k, v in metric(samples, reference).items()}
