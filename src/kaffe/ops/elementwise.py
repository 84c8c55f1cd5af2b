"""Element-wise ops of ``keras.ops.numpy``, declared from tables: one row per op, the torch
function that computes it. Unary ops take ``x``; binary ops take ``x1, x2`` and broadcast."""
import math

import torch

from kaffe.ops.registry import float_tensor, float_tensors, register, tensor, tensors
from kaffe.engine.operation import OpSpec

# name: (Keras class, torch function, floating result?)
UNARY = {
    "abs": ("Abs", torch.abs, False), "absolute": ("Absolute", torch.abs, False),
    "fabs": ("Fabs", torch.abs, True),
    "negative": ("Negative", torch.neg, False), "sign": ("Sign", torch.sign, False),
    "square": ("Square", torch.square, False), "sqrt": ("Sqrt", torch.sqrt, True),
    "cbrt": ("Cbrt", lambda x: torch.sign(x) * torch.abs(x).pow(1.0 / 3.0), True),
    "exp": ("Exp", torch.exp, True), "exp2": ("Exp2", torch.exp2, True),
    "expm1": ("Expm1", torch.expm1, True),
    "log": ("Log", torch.log, True), "log2": ("Log2", torch.log2, True),
    "log10": ("Log10", torch.log10, True), "log1p": ("Log1p", torch.log1p, True),
    "sin": ("Sin", torch.sin, True), "cos": ("Cos", torch.cos, True),
    "tan": ("Tan", torch.tan, True), "arcsin": ("Arcsin", torch.asin, True),
    "arccos": ("Arccos", torch.acos, True), "arctan": ("Arctan", torch.atan, True),
    "sinh": ("Sinh", torch.sinh, True), "cosh": ("Cosh", torch.cosh, True),
    "tanh": ("Tanh", torch.tanh, True), "arcsinh": ("Arcsinh", torch.asinh, True),
    "arccosh": ("Arccosh", torch.acosh, True), "arctanh": ("Arctanh", torch.atanh, True),
    "ceil": ("Ceil", torch.ceil, True), "floor": ("Floor", torch.floor, True),
    "trunc": ("Trunc", torch.trunc, False),
    "reciprocal": ("Reciprocal", torch.reciprocal, True),
    "deg2rad": ("Deg2rad", torch.deg2rad, True), "rad2deg": ("Rad2deg", torch.rad2deg, True),
    "sinc": ("Sinc", torch.sinc, True), "i0": ("I0", torch.i0, True),
    "isnan": ("Isnan", torch.isnan, False), "isinf": ("Isinf", torch.isinf, False),
    "isfinite": ("Isfinite", torch.isfinite, False),
    "isneginf": ("Isneginf", torch.isneginf, False),
    "isposinf": ("Isposinf", torch.isposinf, False),
    "isreal": ("Isreal", torch.isreal, False),
    "signbit": ("Signbit", torch.signbit, False),
    "logical_not": ("LogicalNot", torch.logical_not, False),
    "bitwise_invert": ("BitwiseInvert", torch.bitwise_not, False),
    "bitwise_not": ("BitwiseNot", torch.bitwise_not, False),
    "conj": ("Conj", torch.conj_physical, False),
    "conjugate": ("Conjugate", torch.conj_physical, False),
    "real": ("Real", lambda x: torch.real(x) if x.is_complex() else x, False),
    "imag": ("Imag", lambda x: torch.imag(x) if x.is_complex() else torch.zeros_like(x), False),
    "angle": ("Angle", torch.angle, True),
    "copy": ("Copy", torch.clone, False),
    "erf": ("Erf", torch.erf, True), "erfc": ("Erfc", torch.erfc, True),
    "erfinv": ("Erfinv", torch.erfinv, True),
    "rsqrt": ("Rsqrt", torch.rsqrt, True),
}
_UNARY_MODULE = {"erf": "math", "erfc": "math", "erfinv": "math", "rsqrt": "math"}


def _hypot(a, b):
    return torch.hypot(a, b)


def _divide_no_nan(a, b):
    safe = torch.where(b == 0, torch.ones_like(b), b)
    return torch.where(b == 0, torch.zeros((), dtype=torch.result_type(a, safe), device=a.device),
                       a / safe)


def _mod(a, b):
    return torch.remainder(a, b)


def _floor_divide(a, b):
    return torch.floor_divide(a, b)


def _power(a, b):
    return torch.pow(a, b)


def _heaviside(a, b):
    a, b = (a.float() if not a.is_floating_point() else a), b
    return torch.heaviside(a, b.to(a.dtype))


def _logaddexp2(a, b):
    return torch.logaddexp2(a, b)


# name: (Keras class, torch function, floating result?)
BINARY = {
    "add": ("Add", torch.add, False), "subtract": ("Subtract", torch.sub, False),
    "multiply": ("Multiply", torch.mul, False), "divide": ("Divide", torch.true_divide, True),
    "true_divide": ("TrueDivide", torch.true_divide, True),
    "floor_divide": ("FloorDivide", _floor_divide, False), "mod": ("Mod", _mod, False),
    "fmod": ("Fmod", torch.fmod, False), "power": ("Power", _power, False),
    "maximum": ("Maximum", torch.maximum, False), "minimum": ("Minimum", torch.minimum, False),
    "fmax": ("Fmax", torch.fmax, False), "fmin": ("Fmin", torch.fmin, False),
    "equal": ("Equal", torch.eq, False), "not_equal": ("NotEqual", torch.ne, False),
    "less": ("Less", torch.lt, False), "less_equal": ("LessEqual", torch.le, False),
    "greater": ("Greater", torch.gt, False), "greater_equal": ("GreaterEqual", torch.ge, False),
    "logical_and": ("LogicalAnd", torch.logical_and, False),
    "logical_or": ("LogicalOr", torch.logical_or, False),
    "logical_xor": ("LogicalXor", torch.logical_xor, False),
    "arctan2": ("Arctan2", torch.atan2, True), "hypot": ("Hypot", _hypot, True),
    "logaddexp": ("Logaddexp", torch.logaddexp, True),
    "logaddexp2": ("Logaddexp2", _logaddexp2, True),
    "nextafter": ("Nextafter", torch.nextafter, True),
    "heaviside": ("Heaviside", _heaviside, True),
    "divide_no_nan": ("DivideNoNan", _divide_no_nan, True),
    "gcd": ("Gcd", torch.gcd, False), "lcm": ("Lcm", torch.lcm, False),
    "ldexp": ("Ldexp", torch.ldexp, True),
    "bitwise_and": ("BitwiseAnd", torch.bitwise_and, False),
    "bitwise_or": ("BitwiseOr", torch.bitwise_or, False),
    "bitwise_xor": ("BitwiseXor", torch.bitwise_xor, False),
    "bitwise_left_shift": ("BitwiseLeftShift", torch.bitwise_left_shift, False),
    "bitwise_right_shift": ("BitwiseRightShift", torch.bitwise_right_shift, False),
    "left_shift": ("LeftShift", torch.bitwise_left_shift, False),
    "right_shift": ("RightShift", torch.bitwise_right_shift, False),
}
_BITWISE_ARGS = ("x", "y")  # Keras names the bitwise ops' arguments x, y


def _make_unary(name, fn, floating):
    convert = float_tensor if floating else tensor

    def unary(x):
        return fn(convert(x))
    unary.__name__ = unary.__qualname__ = name
    unary.__doc__ = f"Element-wise ``{name}`` of ``x`` (Keras's ``ops.{name}``), with torch."
    return unary


_SCALAR_OK = {torch.add, torch.sub, torch.mul, torch.true_divide, torch.eq, torch.ne, torch.lt,
              torch.le, torch.gt, torch.ge, torch.fmod, _mod, _floor_divide, _power}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _operand(value, ref, fn):
    """``value`` made ready to meet tensor ``ref``: tensors moved to its device; a Python number
    kept as a number where torch takes one (its weak-scalar promotion is Keras's: an int keeps a
    float tensor's dtype, ``int_tensor * 2.5`` is float32), else a 0-d tensor of that dtype."""
    if isinstance(value, torch.Tensor):
        return value.to(ref.device) if value.device != ref.device and value.dim() else value
    if _number(value):
        if fn in _SCALAR_OK:
            return value
        return torch.tensor(value, dtype=_scalar_dtype(value, ref), device=ref.device)
    return tensor(value, device=ref.device)


def _make_binary(name, fn, floating, arg_names):
    def binary(a, b):
        if isinstance(a, torch.Tensor):
            b = _operand(b, a, fn)
        elif isinstance(b, torch.Tensor):
            a = _operand(a, b, None)  # torch wants a tensor first
        else:
            a, b = tensors(a, b)
        if floating:
            a, b = _floating_pair(a, b)
        return fn(a, b)
    first, second = arg_names
    code = f"def {name}({first}, {second}):\n    return _impl({first}, {second})\n"
    namespace = {"_impl": binary}
    exec(code, namespace)  # a real signature with Keras's argument names (x1, x2 or x, y)
    function = namespace[name]
    function.__doc__ = (f"Element-wise ``{name}`` of ``{first}`` and ``{second}`` with "
                        f"broadcasting (Keras's ``ops.{name}``), with torch.")
    return function


def _scalar_dtype(number, other):
    """A Python number next to tensor ``other``: its dtype, so promotion follows Keras."""
    if isinstance(number, float):
        return other.dtype if other.is_floating_point() else torch.float32
    if other.dtype == torch.bool:
        return torch.int64
    return other.dtype


def _floating_pair(a, b):
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return a, b
    if not (a.is_floating_point() or a.is_complex() or b.is_floating_point() or b.is_complex()):
        return a.to(torch.float32), b.to(torch.float32)
    return a, b


def declare_all(namespace):
    """Register every table row as an op and put the functions in ``namespace``."""
    for name, (class_name, fn, floating) in UNARY.items():
        spec = OpSpec(_make_unary(name, fn, floating), class_name,
                      _UNARY_MODULE.get(name, "numpy"), call=1)
        namespace[name] = register(spec)
    for name, (class_name, fn, floating) in BINARY.items():
        args = _BITWISE_ARGS if class_name.startswith(("Bitwise", "LeftShift", "RightShift")) \
            else ("x1", "x2")
        spec = OpSpec(_make_binary(name, fn, floating, args), class_name, "numpy", call=2)
        namespace[name] = register(spec)


__all__ = list(UNARY) + list(BINARY)
_ = math
