"""Batches made ahead on a background thread (Caffe's ``BasePrefetchingDataLayer``)."""
import atexit
import queue
import threading
import weakref

_LIVE = weakref.WeakSet()


@atexit.register
def _stop_all():
    """Stop every prefetch thread before the interpreter tears down (a daemon thread killed
    inside a C library call aborts the process)."""
    for prefetcher in list(_LIVE):
        prefetcher.close()


class Prefetcher:
    """Call ``make_batch()`` on a daemon thread, keeping up to ``depth`` batches ready.
    ``setup()`` (optional) runs first on that thread (e.g. to open a database cursor there).
    :meth:`get` returns the next batch in order, re-raising an error the thread met."""

    def __init__(self, make_batch, depth=4, setup=None, name="kaffe-prefetch"):
        self._make_batch = make_batch
        self._setup = setup
        self._queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            if self._setup is not None:
                self._setup()
            while not self._stop.is_set():
                if not self._put(("batch", self._make_batch())):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            self._put(("error", err))

    def get(self):
        kind, value = self._queue.get()
        if kind == "error":
            self.close()
            raise value
        return value

    def close(self):
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
