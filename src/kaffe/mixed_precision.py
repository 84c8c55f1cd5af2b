"""Mixed precision with Keras 3's names, on torch's autocast and GradScaler.

``set_global_policy("mixed_float16")`` or ``"mixed_bfloat16"``: ``fit`` / ``evaluate`` /
``predict`` run the model's forward pass under ``torch.autocast`` with that compute dtype
while every weight stays float32 (Keras's variable dtype); outputs are cast to float32 before
losses and metrics. ``mixed_float16`` also scales the loss (``torch.amp.GradScaler``) so small
float16 gradients do not underflow; steps whose gradients overflow are skipped, as Keras's
``LossScaleOptimizer`` does. ``"float32"`` (the default) turns all of it off.

float16 autocast is meant for CUDA; bfloat16 runs on CUDA (Ampere and later) and on CPUs.
"""

_POLICIES = {  # name -> (compute dtype, variable dtype)
    "float32": ("float32", "float32"),
    "mixed_float16": ("float16", "float32"),
    "mixed_bfloat16": ("bfloat16", "float32"),
}


class Policy:
    """A dtype policy: ``Policy("mixed_float16").compute_dtype == "float16"``,
    ``.variable_dtype == "float32"``."""

    def __init__(self, name="float32"):
        if isinstance(name, Policy):
            name = name.name
        if name not in _POLICIES:
            hint = (" Pure float16/bfloat16 weights are not supported: use the mixed_ policy, "
                    "which keeps weights in float32." if name in ("float16", "bfloat16") else "")
            raise ValueError(f"Unknown dtype policy {name!r}; kaffe knows "
                             f"{sorted(_POLICIES)}.{hint}")
        self.name = name
        self.compute_dtype, self.variable_dtype = _POLICIES[name]

    @property
    def is_mixed(self):
        return self.compute_dtype != self.variable_dtype

    @property
    def needs_loss_scaling(self):
        return self.compute_dtype == "float16"

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Policy) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f'<Policy "{self.name}">'


DTypePolicy = Policy  # Keras 3's class name
_global_policy = Policy("float32")


def set_global_policy(policy):
    """Set the policy ``fit``/``evaluate``/``predict`` follow (a name or a ``Policy``)."""
    global _global_policy
    _global_policy = Policy("float32" if policy is None else policy)


def global_policy():
    return _global_policy


set_dtype_policy = set_global_policy  # keras.config's Keras 3 spellings
dtype_policy = global_policy
