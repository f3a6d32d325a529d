"""`KillAt`: the callback the kill-and-resume tests put in a training run.

Imported by the subprocesses of tests/test_resume.py and
tests/jax_process_checks.py (tests/ on their path).
"""

import os
import signal

import keras


class KillAt(keras.callbacks.Callback):
    """SIGKILLs this process after training batch `batch` of epoch `epoch`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == tuple(self.at):
            os.kill(os.getpid(), signal.SIGKILL)
