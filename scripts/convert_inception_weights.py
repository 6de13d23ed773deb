"""Converts pytorch-fid's Inception weights (.pth) once to safetensors, so reading needs no torch.

  python scripts/convert_inception_weights.py [--pth PATH] [--out PATH]

--pth defaults to the first .pth found where `evaluation.inception_weights` looks (the cache
directory, then torch hub's); --out to the cache directory, where `load_inception_variables()`
finds it first. The file holds the torch state dict unchanged (same keys and layouts); the
conversion to flax is checked before writing: every tensor consumed, every parameter set.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # pylint: disable=wrong-import-position
from safetensors.numpy import save  # pylint: disable=wrong-import-position

from evaluation import cache, inception_weights  # pylint: disable=wrong-import-position
from fileio import write_bytes_atomic  # pylint: disable=wrong-import-position


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pth", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
  parser.add_argument("--out", default=str(cache.cache_dir() / inception_weights.SAFETENSORS_NAME))
  args = parser.parse_args(argv)
  pth_paths = [p for p in inception_weights.candidate_paths() if p.suffix == ".pth"]
  pth = args.pth or next((p for p in pth_paths if p.is_file()), pth_paths[0])
  state = inception_weights.read_state_dict(inception_weights.find_weights(pth))
  inception_weights.torch_to_flax_variables(state)  # raises unless the tensors fit exactly
  write_bytes_atomic(args.out, save({k: np.ascontiguousarray(v) for k, v in state.items()}))
  print(f"Wrote {args.out} ({len(state)} tensors).")


if __name__ == "__main__":
  main()
