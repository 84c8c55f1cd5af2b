"""``keras.ops.linalg``: decompositions, solves and norms with ``torch.linalg``."""
import torch

from kaffe.ops.registry import float_tensor, float_tensors, op


@op("Cholesky", module="linalg")
def cholesky(x, upper=False):
    return torch.linalg.cholesky(float_tensor(x), upper=upper)


@op("CholeskyInverse", module="linalg")
def cholesky_inverse(x, upper=False):
    return torch.cholesky_inverse(float_tensor(x), upper=upper)


@op("Det", module="linalg")
def det(x):
    return torch.linalg.det(float_tensor(x))


@op("Eig", module="linalg", dynamic=False)
def eig(x):
    return tuple(torch.linalg.eig(float_tensor(x)))


@op("Eigh", module="linalg")
def eigh(x):
    return tuple(torch.linalg.eigh(float_tensor(x)))


@op("Inv", module="linalg")
def inv(x):
    return torch.linalg.inv(float_tensor(x))


@op("LuFactor", module="linalg")
def lu_factor(x):
    lu, pivots = torch.linalg.lu_factor(float_tensor(x))
    return lu, pivots - 1  # Keras (like scipy) counts pivots from 0


@op("Norm", module="linalg")
def norm(x, ord=None, axis=None, keepdims=False):
    x = float_tensor(x)
    if axis is None and ord is None:
        return torch.linalg.vector_norm(x, dim=None, keepdim=keepdims)
    if isinstance(axis, (list, tuple)) and len(axis) == 2 or (axis is None and x.dim() == 2):
        return torch.linalg.matrix_norm(x, ord="fro" if ord is None else ord,
                                        dim=tuple(axis) if axis is not None else (-2, -1),
                                        keepdim=keepdims)
    return torch.linalg.vector_norm(x, ord=2 if ord is None else ord, dim=axis,
                                    keepdim=keepdims)


@op("Qr", module="linalg")
def qr(x, mode="reduced"):
    return tuple(torch.linalg.qr(float_tensor(x), mode=mode))


@op("Solve", call=2, module="linalg")
def solve(a, b):
    a, b = float_tensors(a, b)
    return torch.linalg.solve(a, b)


@op("SolveTriangular", call=2, module="linalg")
def solve_triangular(a, b, lower=False):
    a, b = float_tensors(a, b)
    vector = b.dim() == a.dim() - 1
    b = b.unsqueeze(-1) if vector else b
    out = torch.linalg.solve_triangular(a, b, upper=not lower)
    return out.squeeze(-1) if vector else out


@op("SVD", module="linalg")
def svd(x, full_matrices=True, compute_uv=True):
    x = float_tensor(x)
    if not compute_uv:
        return torch.linalg.svdvals(x)
    return tuple(torch.linalg.svd(x, full_matrices=full_matrices))


@op("Lstsq", call=2, module="linalg")
def lstsq(a, b, rcond=None):
    a, b = float_tensors(a, b)
    vector = b.dim() == 1
    out = torch.linalg.lstsq(a, b.unsqueeze(-1) if vector else b, rcond=rcond,
                             driver="gelsd" if a.device.type == "cpu" else None).solution
    return out.squeeze(-1) if vector else out


@op("Pinv", module="linalg")
def pinv(x, rcond=None):
    x = float_tensor(x)
    return torch.linalg.pinv(x) if rcond is None else torch.linalg.pinv(x, rtol=rcond)


@op("MatrixRank", module="linalg")
def matrix_rank(x, tol=None):
    return torch.linalg.matrix_rank(float_tensor(x), atol=tol)
