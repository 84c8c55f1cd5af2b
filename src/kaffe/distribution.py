"""``keras.distribution``'s spelling of ``kaffe.distribute`` (``DataParallel``,
``set_distribution``, ``distribution``, ``list_devices``)."""
from kaffe.distribute import (DataParallel, distribution, list_devices,  # noqa: F401
                              set_distribution)
