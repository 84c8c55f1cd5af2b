"""Caffe's ``SyncedMemory`` on torch: a host (CPU) tensor, a device tensor, and which one is
freshest (the *head*).

A blob's ``data`` or ``diff`` lives where it was last written: a forward on the device leaves
it there (``write``), Python reading ``blob.data`` copies it to the host once (``host``), and
because Python may then write into that numpy view, the host becomes the head and the next
forward uploads it (``on_device``) -- one copy each way, only when needed. With no device
(``device=None``, kaffe's CPU nets) there is one tensor and nothing is ever copied.
"""
import torch

__all__ = ["SyncedTensor", "HOST", "DEVICE", "SYNCED"]

HOST, DEVICE, SYNCED = "host", "device", "synced"


class SyncedTensor:
    """One float32 array kept on the host and, when ``device`` is set, on a device.
    ``uploads`` / ``downloads`` count the copies (for tests and profiling)."""

    def __init__(self, shape=(), device=None):
        self.device = None if device is None else torch.device(device)
        self._host = torch.zeros(shape)
        self._dev, self._borrowed = None, False
        self.head = HOST
        self.uploads = self.downloads = 0
        self.viewed = False     # Python took a numpy view: keep one buffer, copy into it
        self._borrowed = False  # _host is a computed tensor kept without a copy (not ours)

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
                self._host = self._host.clone()
                self._borrowed = False
            self.viewed = True
            if self.device is not None:
                self.head = HOST
        return self._host

    def on_device(self):
        """The tensor a layer on the device reads, uploaded first if the host is fresher."""
        if self.device is None:
            return self._host
        if self._dev is None or self._dev.shape != self._host.shape:
            self._dev = torch.empty(self._host.shape, device=self.device)
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
                self._host = tensor.to("cpu", torch.float32, copy=True)
                self._borrowed = False
            elif tuple(tensor.shape) == self.shape:
                self._host.copy_(tensor)
            else:
                self._host = tensor.to("cpu", torch.float32, copy=True)
            self.head = HOST
            return
        if self._dev is not None and tuple(tensor.shape) == tuple(self._dev.shape):
            self._dev.copy_(tensor)
        else:
            self._dev = tensor.to(self.device, torch.float32, copy=True)
        if tuple(self._dev.shape) != self.shape:
            self._host = torch.zeros(self._dev.shape)
        self.head = DEVICE

    def hold(self, tensor):
        """Make a host tensor the value itself (no copy)."""
        tensor = tensor.detach()
        self._host = tensor if tensor.device.type == "cpu" and tensor.dtype == torch.float32 \
            else tensor.to("cpu", torch.float32)
        self._borrowed = False
        self.head = HOST

    def reshape(self, shape):
        """Fresh zeros of ``shape`` (on the host; uploaded on the next device read)."""
        self._host = torch.zeros(shape)
        self._dev, self._borrowed = None, False
        self.head = HOST

    def to_device(self, device):
        """Keep this value on ``device`` from now on (None: host only)."""
        host = self.host(mutable=False)
        self.device = None if device is None else torch.device(device)
        self._host, self._dev, self.head = host, None, HOST
