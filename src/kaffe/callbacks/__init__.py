"""Keras's callbacks (``kaffe.callbacks.EarlyStopping`` ...), driven by ``fit``'s hooks.

Batch logs cost a device sync, so ``fit`` builds them only for callbacks that override a
train-batch hook, and for a callback with ``batch_log_interval_s`` (the progress bar) at most
that often; see ``kaffe.callbacks.base.CallbackList``.
"""
from kaffe.callbacks.base import Callback, CallbackList, History
from kaffe.callbacks.checkpoint import ModelCheckpoint
from kaffe.callbacks.csv_logger import CSVLogger
from kaffe.callbacks.early_stopping import EarlyStopping, MonitorCallback
from kaffe.callbacks.lr_callbacks import LearningRateScheduler, ReduceLROnPlateau
from kaffe.callbacks.misc import LambdaCallback, TerminateOnNaN
from kaffe.callbacks.progbar import ProgbarLogger
from kaffe.callbacks.tensorboard import TensorBoard

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "MonitorCallback", "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler",
           "CSVLogger", "TerminateOnNaN", "LambdaCallback", "TensorBoard"]
