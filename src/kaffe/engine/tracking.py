"""Layers kept in lists, dicts and tuples of a user-written layer or model are its sub-layers,
as in Keras 3 (``self.blocks = [Dense(8) for _ in range(3)]``, ``self.stages = []`` then
``self.stages.append(...)``): their weights train, save and move with it.

The attribute keeps the user's container (a ``list`` / ``dict`` subclass that notices changes);
beside it, under the same name in ``_modules``, a :class:`TrackedLayers` (an ``nn.ModuleList``)
holds the layers found in it, nested containers included, so torch's ``parameters()``,
``state_dict()`` (keys ``blocks.0.kernel``), ``.to(device)`` and ``train()`` see them. Only
user-written classes get this ``__setattr__``; kaffe's own layers register their children
explicitly and pay nothing.
"""
from torch import nn


class TrackedLayers(nn.ModuleList):
    """The layers found in one tracked attribute, in order (registered for torch)."""


def _modules_in(value, found, seen):
    if isinstance(value, nn.Module):
        if id(value) not in seen:
            seen.add(id(value))
            found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _modules_in(item, found, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _modules_in(item, found, seen)
    return found


def _sync(owner, name, container):
    """Register the layers now in ``container`` as ``owner``'s sub-layers under ``name``."""
    found = _modules_in(container, [], set())
    if found:
        owner._modules[name] = TrackedLayers(found)
    elif isinstance(owner._modules.get(name), TrackedLayers):
        del owner._modules[name]


class _Notifies:
    """Mix-in: after every change, re-register the owner's layers."""

    def _bind(self, owner, name):
        self._owner, self._name = owner, name
        return self

    def _changed(self):
        owner = getattr(self, "_owner", None)
        if owner is not None and owner.__dict__.get(self._name) is self:
            _sync(owner, self._name, self)


def _notifying(method_name, base):
    method = getattr(base, method_name)

    def changed_after(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        self._changed()
        return result
    changed_after.__name__ = method_name
    return changed_after


class TrackedList(_Notifies, list):
    """A ``list`` whose owner's sub-layers follow its contents."""

    def __iadd__(self, other):
        list.__iadd__(self, other)
        self._changed()
        return self


for _name in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
              "__setitem__", "__delitem__"):
    setattr(TrackedList, _name, _notifying(_name, list))


class TrackedDict(_Notifies, dict):
    """A ``dict`` whose owner's sub-layers follow its values."""


for _name in ("__setitem__", "__delitem__", "pop", "popitem", "clear", "update", "setdefault"):
    setattr(TrackedDict, _name, _notifying(_name, dict))


def tracking_setattr(self, name, value):
    """``__setattr__`` of user-written layers and models: lists, dicts and tuples assigned to
    public attributes are tracked; anything else is set as ``nn.Module`` does."""
    kind = type(value)
    modules = self.__dict__.get("_modules")
    if modules is None or name.startswith("_") or not (
            kind is list or kind is dict or kind is tuple or isinstance(value, _Notifies)):
        if modules is not None and isinstance(modules.get(name), TrackedLayers):
            del modules[name]  # a tracked container replaced by something else
        nn.Module.__setattr__(self, name, value)
        return
    if kind is tuple:
        container = value
    elif isinstance(value, dict):
        container = TrackedDict(value)._bind(self, name)
    else:
        container = TrackedList(value)._bind(self, name)
    if isinstance(modules.get(name), TrackedLayers):
        del modules[name]
    nn.Module.__setattr__(self, name, container)   # clears a parameter/buffer of that name
    _sync(self, name, container)
