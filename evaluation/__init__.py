"""Evaluation: feature networks (the FID Inception, a digits CNN) and metrics (FID, IS, KID).

Nothing is downloaded at run time. `evaluation.torch_reference` (pytorch-fid's network, for tests
and benchmarks) is not imported here: the library itself needs no torch.
"""
