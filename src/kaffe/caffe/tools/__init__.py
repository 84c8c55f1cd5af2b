"""Caffe's data tools as functions (the ``kaffe`` command runs them): ``convert_mnist_data``,
``convert_imageset``, ``compute_image_mean``. Each writes through :class:`kaffe.data.db.DBWriter`
(temporary folder, renamed when complete), so Ctrl-C never leaves a broken database."""
from kaffe.caffe.tools.compute_mean import compute_image_mean
from kaffe.caffe.tools.convert_imageset import convert_imageset
from kaffe.caffe.tools.convert_mnist import convert_mnist_data

__all__ = ["convert_mnist_data", "convert_imageset", "compute_image_mean"]
