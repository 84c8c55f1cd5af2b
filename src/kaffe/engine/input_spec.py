"""``InputSpec``: what a layer accepts (rank, known axis sizes, dtype), checked as Keras does.

A layer sets ``self.input_spec = InputSpec(ndim=3)`` (or a list, one per input); kaffe checks
it when the layer is called on a symbolic tensor and when it is built from its first eager
input, so a wrong input fails at graph-build time with the layer's name.
"""


class InputSpec:
    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = dtype
        self.shape = None if shape is None else tuple(shape)
        self.ndim = len(self.shape) if shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = {int(k): v for k, v in (axes or {}).items()}
        self.allow_last_axis_squeeze, self.name, self.optional = (
            allow_last_axis_squeeze, name, optional)

    def __repr__(self):
        fields = {k: v for k, v in vars(self).items() if v not in (None, {}, False)}
        return "InputSpec(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def problem(self, shape):
        """What is wrong with an input of ``shape`` (a tuple, None for unknown sizes), or None."""
        rank = len(shape)
        if self.ndim is not None and rank != self.ndim and not (
                self.allow_last_axis_squeeze and rank in (self.ndim - 1, self.ndim + 1)):
            return f"expected ndim={self.ndim}, found ndim={rank}"
        if self.max_ndim is not None and rank > self.max_ndim:
            return f"expected max_ndim={self.max_ndim}, found ndim={rank}"
        if self.min_ndim is not None and rank < self.min_ndim:
            return f"expected min_ndim={self.min_ndim}, found ndim={rank}"
        for axis, size in self.axes.items():
            known = shape[axis] if -rank <= axis < rank else None
            if size is not None and known is not None and known != size:
                return f"expected axis {axis} of size {size}, found {known}"
        if self.shape is not None and rank == len(self.shape):
            for want, got in zip(self.shape, shape):
                if want is not None and got is not None and want != got:
                    return f"expected shape {self.shape}, found shape {tuple(shape)}"
        return None


def check_input_spec(layer, shapes):
    """Raise a ValueError naming the layer when its ``input_spec`` refuses ``shapes``."""
    spec = layer.__dict__.get("input_spec")
    if spec is None or isinstance(shapes, dict):
        return
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    inputs = shapes if isinstance(shapes, list) else [shapes]
    if len(specs) != len(inputs) and len(specs) != 1:
        raise ValueError(f"Layer '{layer.name}' expects {len(specs)} input(s) (its input_spec), "
                         f"received {len(inputs)}.")
    for i, (spec_i, shape) in enumerate(zip(specs * len(inputs) if len(specs) == 1 else specs,
                                            inputs)):
        problem = spec_i.problem(tuple(shape))
        if problem:
            raise ValueError(f"Input {i} of layer '{layer.name}' is incompatible with the "
                             f"layer: {problem}. Full shape received: {tuple(shape)}")
