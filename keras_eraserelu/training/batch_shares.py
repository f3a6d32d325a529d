"""Each JAX process's share of every global batch (several processes).

Every process reads the same pipeline of global batches and feeds its own
contiguous part of each (`batch_share`): a tf.data pipeline through
`BatchShareDataParallel.distribute_dataset`, a `keras.utils.PyDataset`
through `ShareBatches`. The processes then train on the batches one process
would.

Example:

```python
batch_share(16, 1, 2, 2)  # (8, 16): rows 8 to 16 for process 1 of 2
```
"""

from __future__ import annotations

import keras


class BatchShareDataParallel(keras.distribution.DataParallel):
    """`keras.distribution.DataParallel` that splits each global batch in
    place: process i takes the i-th of its equal contiguous parts.

    Keras' own split of a tf.data pipeline over processes (`rebatch` to the
    per-process batch, then `shard`) moves examples across batches: a test
    set whose last batch is smaller than the global batch then gives the
    processes different numbers of batches, and the one with more waits
    for the others forever. Here every global batch stays what one process
    would train on, so the runs are the same; a batch that does not split
    over the devices (a test set's last one) leaves out its last
    `rows % devices` rows, saying so, instead of failing to shard.

    Args:
        devices: list of Keras device names, of every process.

    Example:

    ```python
    distribution = BatchShareDataParallel(devices=keras.distribution.list_devices())
    ```
    """

    def __init__(self, devices):
        # `distribute_dataset` cuts tf.data pipelines whatever the flag; it
        # stays on so that Keras refuses any other data not cut for this
        # process (`BackendStrategy.feed` turns it off as it cuts them).
        super().__init__(devices=devices)

    def distribute_dataset(self, dataset):
        """This process's share of every batch of a tf.data pipeline."""
        from keras_eraserelu.core import tensorflow_loaded

        tf = tensorflow_loaded()  # without it, nothing is a tf.data.Dataset
        if tf is None or not isinstance(dataset, tf.data.Dataset):
            return dataset
        return share_batches(dataset, *self.share())

    def share(self):
        """(process id, process count, device count): this process's share."""
        import jax

        return jax.process_index(), jax.process_count(), self.device_mesh.devices.size


def batch_share(rows, process_id, num_processes, num_devices):
    """(start, stop): the rows of a global batch of `rows` that process
    `process_id` feeds, the rows past the last multiple of `num_devices`
    left out. Works on Python ints and on tensors.

    Example:

    ```python
    batch_share(16, 1, 2, 2)  # (8, 16)
    batch_share(5, 0, 2, 2)   # (0, 2): the fifth row is left out
    ```
    """
    each = (rows - rows % num_devices) // num_processes
    return process_id * each, (process_id + 1) * each


def share_batches(dataset, process_id, num_processes, num_devices):
    """`dataset` (batched, tf.data) cut to this process's `batch_share` of
    each batch; a batch left with no rows is dropped, and a cut one said on
    standard error."""
    import sys

    from keras_eraserelu.core import tensorflow as tf

    def share(*element):
        rows = tf.shape(tf.nest.flatten(element)[0])[0]
        start, stop = batch_share(rows, process_id, num_processes, num_devices)
        left_out = rows % num_devices
        tf.cond(left_out > 0, lambda: _say_left_out(tf, sys, rows, left_out,
                num_devices), lambda: tf.constant(False))  # fmt: skip
        part = tf.nest.map_structure(lambda value: value[start:stop], element)
        return part if len(part) > 1 else part[0]

    def not_empty(*element):
        return tf.shape(tf.nest.flatten(element)[0])[0] > 0

    return dataset.map(share).filter(not_empty)


class ShareBatches(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of global batches cut to one process's
    `batch_share` of each, as `share_batches` cuts a tf.data pipeline.

    Args:
        batches: `keras.utils.PyDataset`. Gives global batches.
        process_id, num_processes, num_devices: as in `batch_share`.

    Example:

    ```python
    ShareBatches(batches, 1, 2, 2)[0]  # rows 8 to 16 of batches[0] (16 rows)
    ```
    """

    def __init__(self, batches, process_id, num_processes, num_devices):
        super().__init__(
            workers=batches.workers,
            use_multiprocessing=batches.use_multiprocessing,
            max_queue_size=batches.max_queue_size,
        )
        self.batches = batches
        self.share = (process_id, num_processes, num_devices)

    @property
    def num_batches(self):
        return self.batches.num_batches

    def __getitem__(self, index):
        batch = self.batches[index]
        rows = len(keras.tree.flatten(batch)[0])
        start, stop = batch_share(rows, *self.share)
        return keras.tree.map_structure(lambda value: value[start:stop], batch)

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()


def _say_left_out(tf, sys, rows, left_out, num_devices):
    tf.print(
        "keras_eraserelu: a batch of", rows, "examples does not split over",
        num_devices, "devices; left out: its last", left_out,
        output_stream=sys.stderr,
    )  # fmt: skip
    return tf.constant(True)
