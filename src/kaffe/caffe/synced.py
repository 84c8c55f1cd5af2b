"""Caffe's ``SyncedMemory`` on torch: a host (CPU) tensor, a device tensor, and which one is
freshest (the *head*).

A blob's ``data`` or ``diff`` lives where it was last written: a forward on the device leaves
it there (``write``), Python reading ``blob.data`` copies it to the host once (``host``), and
because Python may then write into that numpy view, the host becomes the head and the next
forward uploads it (``on_device``) -- one copy each way, only when needed. With no device
(``device=None``, kaffe's CPU nets) there is one tensor and nothing is ever copied.

A parameter lives on the device as a torch ``Parameter`` that layers, autograd and the
optimizer update in place, so its host copy (:class:`MirroredTensor`) cannot be told of each
write; it compares a *stamp* instead (the tensor's identity, autograd's in-place version counter,
its storage, and :data:`EPOCH`, which the solver bumps after each update, as nets that share a
storage do not share a version counter). Python's ``.data`` / ``.diff`` of a parameter hand out a
writable host view, so the copy is queued in :data:`PENDING` and uploaded by
:func:`flush_host_writes` before the device is next read or written (a net's forward, backward,
``clear_param_diffs``, the solver's update): Caffe's ``mutable_cpu_data`` then ``gpu_data``.
"""
import torch

__all__ = ["SyncedTensor", "MirroredTensor", "HOST", "DEVICE", "SYNCED", "PENDING",
           "flush_host_writes", "refresh", "device_written"]

HOST, DEVICE, SYNCED = "host", "device", "synced"

PENDING = []     # mirrors Python may have written into, to upload before the device is used
EPOCH = [0]      # bumped when device memory several nets share changes (a solver update)


def _kept(make, *args, **kwargs):
    """``make(*args, **kwargs)`` as a normal tensor even under ``torch.inference_mode``: a
    buffer a blob keeps is written in place later, and torch refuses in-place writes to an
    inference-mode tensor outside that mode (a forward under ``inference_mode``, then one
    without, would fail)."""
    if torch.is_inference_mode_enabled():
        with torch.inference_mode(False):
            return make(*args, **kwargs)
    return make(*args, **kwargs)


def flush_host_writes():
    """Upload every parameter copy Python was handed since the last flush and return those
    copies. Other nets' copies of the same memory (test nets share the train net's) re-read
    it; these stay fresh."""
    if not PENDING:
        return []
    uploaded = []
    while PENDING:
        mirror = PENDING.pop()
        if mirror.upload():
            uploaded.append(mirror)
    device_written()
    for mirror in uploaded:
        mirror.restamp()
    return uploaded


def refresh(mirrors):
    """Copy the device values into these host copies' own buffers: the numpy views Python
    took just before an update or ``clear_param_diffs`` show its result (as pycaffe's do on
    the CPU), at the cost of one copy each, only for the views Python took."""
    for mirror in mirrors:
        mirror.download()


def device_written():
    """Say that shared device memory changed (after an optimizer step): every mirror re-reads."""
    EPOCH[0] += 1


class SyncedTensor:
    """One float32 array kept on the host and, when ``device`` is set, on a device.
    ``uploads`` / ``downloads`` count the copies (for tests and profiling)."""

    def __init__(self, shape=(), device=None):
        self.device = None if device is None else torch.device(device)
        self._host = _kept(torch.zeros, shape)
        self._dev, self._borrowed = None, False
        self.head = HOST
        self.uploads = self.downloads = 0
        self.viewed = False     # Python took a numpy view: keep one buffer, copy into it
        self._borrowed = False  # _host is a computed tensor kept without a copy (not ours)
        self._dev_borrowed = False   # likewise _dev: never written into, replaced instead

    @property
    def shape(self):
        return tuple(self._host.shape)

    def host(self, mutable=True):
        """The host tensor, brought up to date; ``mutable`` (Python may write into it) makes
        the host the head, so the next device read uploads it."""
        if self.head == DEVICE:
            self._host.copy_(self._dev)
            self.downloads += 1
            self.head = SYNCED
        if mutable:
            if self._borrowed:
                self._host = _kept(self._host.clone)
                self._borrowed = False
            self.viewed = True
            if self.device is not None:
                self.head = HOST
        return self._host

    def on_device(self):
        """The tensor a layer on the device reads, uploaded first if the host is fresher."""
        if self.device is None:
            return self._host
        if self._dev is None or self._dev.shape != self._host.shape or \
                (self._dev_borrowed and self.head == HOST):
            self._dev = _kept(torch.empty, self._host.shape, device=self.device)
            self._dev_borrowed = False
            if self.head != DEVICE:
                self.head = HOST
        if self.head == HOST:
            self._dev.copy_(self._host)
            self.uploads += 1
            self.head = SYNCED
        return self._dev

    def write(self, tensor, borrow=False):
        """Store a computed value (a top or a diff) where it was computed: on the device when
        there is one (the host copy goes stale), else into the host buffer. ``None``: zeros.
        Same shape: copied into the kept buffer (warm memory); new shape: a fresh buffer.
        ``borrow``: nobody else writes into ``tensor``, so on the host, while Python has no
        view, it is kept itself (no copy)."""
        if tensor is None:
            tensor = torch.zeros(self.shape)
        tensor = tensor.detach()
        if self.device is None:
            if borrow and not self.viewed and tensor.dtype == torch.float32 \
                    and tensor.device.type == "cpu":
                self._host, self._borrowed, self.head = tensor, True, HOST
                return
            if self._borrowed:
                self._host = _kept(tensor.to, "cpu", torch.float32, copy=True)
                self._borrowed = False
            elif tuple(tensor.shape) == self.shape:
                self._host.copy_(tensor)
            else:
                self._host = _kept(tensor.to, "cpu", torch.float32, copy=True)
            self.head = HOST
            return
        if borrow and tensor.dtype == torch.float32 and tensor.device == self.device:
            self._dev, self._dev_borrowed = tensor, True     # Python never views _dev itself
        elif self._dev is not None and not self._dev_borrowed and \
                tuple(tensor.shape) == tuple(self._dev.shape):
            self._dev.copy_(tensor)
        else:
            self._dev = _kept(tensor.to, self.device, torch.float32, copy=True)
            self._dev_borrowed = False
        if tuple(self._dev.shape) != self.shape:
            self._host = _kept(torch.zeros, self._dev.shape)
        self.head = DEVICE

    def lend(self, tensor):
        """``write(tensor, borrow=True)`` where it keeps ``tensor`` itself without a check to
        make (a host-only value Python has no view of, same shape, float32 on the host: the
        caller's promise); False, doing nothing, where ``write`` has more to do."""
        if self.viewed or self.device is not None or tensor.shape != self._host.shape:
            return False
        self._host, self._borrowed, self.head = tensor, True, HOST
        return True

    def hold(self, tensor):
        """Make a host tensor the value itself (no copy)."""
        tensor = tensor.detach()
        self._host = tensor if tensor.device.type == "cpu" and tensor.dtype == torch.float32 \
            else tensor.to("cpu", torch.float32)
        self._borrowed = False
        self.head = HOST

    def reshape(self, shape):
        """Fresh zeros of ``shape`` (on the host; uploaded on the next device read)."""
        self._host = _kept(torch.zeros, shape)
        self._dev, self._borrowed, self._dev_borrowed = None, False, False
        self.head = HOST

    def to_device(self, device):
        """Keep this value on ``device`` from now on (None: host only)."""
        host = self.host(mutable=False)
        self.device = None if device is None else torch.device(device)
        self._host, self._dev, self.head = host, None, HOST
        self._dev_borrowed = False


class MirroredTensor:
    """The host copy of a device tensor others write in place (a parameter, its ``.grad``):
    ``host()`` downloads it when its stamp changed since the last copy and queues the copy for
    upload (Python may write into the view it gets); ``upload()`` writes it back. ``source()``
    returns the device tensor now (a parameter's ``.grad`` may be replaced by autograd)."""

    def __init__(self, source):
        self.source = source
        self._host, self._stamp, self.dirty = None, None, False
        self.uploads = self.downloads = 0

    @staticmethod
    def _stamp_of(tensor):
        return EPOCH[0], id(tensor), tensor._version, tensor.data_ptr()

    def host(self):
        device = self.source()
        if not self.dirty:   # else Python's unflushed write is the freshest value
            if self._host is None or self._host.shape != device.shape:
                self._host, self._stamp = _kept(torch.empty, device.shape), None
            stamp = self._stamp_of(device)
            if stamp != self._stamp:
                self._host.copy_(device.detach())
                self.downloads += 1
                self._stamp = stamp
            self.dirty = True
            PENDING.append(self)
        return self._host

    def upload(self):
        """Write the host copy to the device (if Python was handed it); True if it did."""
        if not self.dirty:
            return False
        self.source().data.copy_(self._host)   # as a numpy write would: the graph stays valid
        self.uploads += 1
        self.dirty = False
        return True

    def download(self):
        """Bring the host copy (same buffer) up to date now."""
        device = self.source()
        self._host.copy_(device.detach())
        self.downloads += 1
        self._stamp = self._stamp_of(device)

    def restamp(self):
        """The host copy equals the device tensor as it is now."""
        self._stamp = self._stamp_of(self.source())
