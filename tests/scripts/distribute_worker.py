"""One worker of a two-worker MultiWorkerMirroredStrategy run on localhost.

Usage: python distribute_worker.py OUT_DIR REPORT_DIR MODE, with TF_CONFIG set.
MODE "multiworker" or "auto" builds the strategy with `make_strategy(MODE)`
(which patches Keras); "nofix" builds a bare MultiWorkerMirroredStrategy. The worker
trains, saves its run files through `writable_dir(OUT_DIR)` and writes its
weights and a JSON report to REPORT_DIR for the test to compare.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
out_dir, report_dir, mode = sys.argv[1:4]

# The strategy comes first: nothing may start the TensorFlow runtime before it.
if mode != "nofix":
    from keras_eraserelu.training.strategies import make_strategy

    strategy = make_strategy(mode)
else:
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distribute_common import GLOBAL_BATCH, train  # noqa: E402

from keras_eraserelu.training.cluster import writable_dir  # noqa: E402
from keras_eraserelu.training.compat import is_patched  # noqa: E402
from keras_eraserelu.training.strategies import (  # noqa: E402
    describe_strategy,
    per_replica_batch_size,
)

index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
model, history = train(strategy)
with writable_dir(out_dir, strategy) as run_dir:
    model.save_weights(os.path.join(run_dir, "model.weights.h5"))
    with open(os.path.join(run_dir, "history.json"), "w") as f:
        json.dump(history, f)
np.savez(os.path.join(report_dir, f"worker{index}.npz"), *model.get_weights())
report = {
    "describe": describe_strategy(strategy),
    "patched": is_patched(),
    "per_replica_batch": per_replica_batch_size(GLOBAL_BATCH, strategy),
    "run_dir": run_dir,
    "history": history,
}
with open(os.path.join(report_dir, f"worker{index}.json"), "w") as f:
    json.dump(report, f)
