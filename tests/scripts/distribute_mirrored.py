"""MirroredStrategy over 2 logical CPU devices against the default strategy.

Usage: python distribute_mirrored.py REPORT_DIR. Splits the CPU before
TensorFlow starts, trains the shared tiny model under
`make_strategy("mirrored")` and under the default strategy with the same
global batch, and writes both weight sets and a JSON report to REPORT_DIR.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

(cpu,) = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distribute_common import GLOBAL_BATCH, train  # noqa: E402

from keras_eraserelu.training.precision import (  # noqa: E402
    resolve_jit_compile,
    resolve_precision,
)
from keras_eraserelu.training.strategies import (  # noqa: E402
    describe_strategy,
    make_strategy,
    per_replica_batch_size,
)

report_dir = sys.argv[1]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    strategy = make_strategy("mirrored")
mirrored, history = train(strategy)
default, default_history = train(tf.distribute.get_strategy())
try:
    per_replica_batch_size(GLOBAL_BATCH + 1, strategy)
    batch_error = ""
except ValueError as error:
    batch_error = str(error)
np.savez(os.path.join(report_dir, "mirrored.npz"), *mirrored.get_weights())
np.savez(os.path.join(report_dir, "default.npz"), *default.get_weights())
report = {
    "describe": describe_strategy(strategy),
    "warnings": [str(w.message) for w in caught],
    "per_replica_batch": per_replica_batch_size(GLOBAL_BATCH, strategy),
    "batch_error": batch_error,
    "precision": resolve_precision("auto", strategy),
    "jit_compile": resolve_jit_compile("auto", strategy),
    "history": history,
    "default_history": default_history,
}
with open(os.path.join(report_dir, "report.json"), "w") as f:
    json.dump(report, f)
