"""Data parallelism with jit + a device mesh: params replicated, batch split along its first axis.

The same code runs on 1 CPU, 8 fake CPU devices, a GPU box, or several hosts (after
`jax.distributed.initialize()`); library functions never mention devices.
"""
import dataclasses

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from configs.errors import ArgumentError, UserError

DATA_AXIS = "data"


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """The mesh over all devices (all hosts) and the two shardings training and sampling use."""

  mesh: jax.sharding.Mesh

  @classmethod
  def over_all_devices(cls) -> "DataParallel":
    # Auto axes: jax.make_mesh defaults to Explicit (sharding in types), which diffrax's loops reject.
    return cls(jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                             axis_types=(jax.sharding.AxisType.Auto,)))

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  @property
  def batch(self) -> NamedSharding:
    return NamedSharding(self.mesh, P(DATA_AXIS))

  @property
  def stacked_batch(self) -> NamedSharding:
    """Sharding of a stack of batches (K, B, ...): split along B."""
    return NamedSharding(self.mesh, P(None, DATA_AXIS))

  def check_batch_size(self, global_batch: int):
    """Raises ArgumentError('batch_size') unless global_batch splits evenly over the devices."""
    if global_batch % jax.device_count():
      raise ArgumentError("batch_size", f"{{arg}}={global_batch} must be divisible by the number "
                          f"of devices ({jax.device_count()}); set {{arg}} to a multiple of it.")

  def check_same_on_all_hosts(self, what: str, value: int) -> None:
    """Every host must run with the same `value` of setting `what` (a no-op on one host)."""
    if jax.process_count() > 1:
      try:
        multihost_utils.assert_equal(np.int64(value), what)
      except AssertionError as err:
        raise UserError(f"{what}={value} on host {jax.process_index()}, but the hosts differ "
                         f"({err}); start every host with the same config.") from None

  def global_array(self, local: np.ndarray, sharding: NamedSharding | None = None, *,
                   global_batch: int | None = None) -> jax.Array:
    """Global array from this process's slice (B / num_processes, ...) of the batch.

    With global_batch, checks that the slice holds B / num_processes examples along the batch
    axis (axis 1 of stacked batches).
    """
    sharding = sharding or self.batch
    axis = 1 if sharding == self.stacked_batch else 0
    if global_batch is not None and local.shape[axis] * jax.process_count() != global_batch:
      raise UserError(f"This host's batch holds {local.shape[axis]} examples; a global batch of "
                       f"{global_batch} over {jax.process_count()} processes needs "
                       f"{global_batch // jax.process_count()} on every host.")
    return jax.make_array_from_process_local_data(sharding, local)
