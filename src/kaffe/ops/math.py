"""``keras.ops.math``: segment reductions, top-k, FFTs, sequence framing, ... with torch."""
import torch

from kaffe.ops.registry import float_tensor, float_tensors, op, tensor, tensors


def _segment(reduce, data, segment_ids, num_segments):
    data = tensor(data)
    ids = tensor(segment_ids, device=data.device).long()
    if num_segments is None:
        num_segments = int(ids.max().item()) + 1 if ids.numel() else 0
    shape = (num_segments,) + tuple(data.shape[1:])
    fill = {"sum": 0, "prod": 1, "amax": float("-inf"), "amin": float("inf")}[reduce]
    dtype = data.dtype if data.is_floating_point() else data.dtype
    out = torch.full(shape, fill, dtype=dtype, device=data.device)
    index = ids.reshape((-1,) + (1,) * (data.dim() - 1)).expand_as(data)
    out = out.scatter_reduce(0, index, data, reduce, include_self=True)
    if reduce in ("amax", "amin") and data.is_floating_point():
        present = torch.zeros(num_segments, dtype=torch.bool, device=data.device)
        present[ids[ids < num_segments]] = True
        empty = torch.tensor(0.0 if False else (float("-inf") if reduce == "amax"
                                                else float("inf")), dtype=dtype)
        out = torch.where(present.reshape((-1,) + (1,) * (data.dim() - 1)), out,
                          empty.to(data.device))
    return out


@op("SegmentSum", call=2, module="math")
def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    return _segment("sum", data, segment_ids, num_segments)


@op("SegmentMax", call=2, module="math")
def segment_max(data, segment_ids, num_segments=None, sorted=False):
    return _segment("amax", data, segment_ids, num_segments)


@op("SegmentMin", call=2, module="math")
def segment_min(data, segment_ids, num_segments=None, sorted=False):
    return _segment("amin", data, segment_ids, num_segments)


@op("SegmentProd", call=2, module="math")
def segment_prod(data, segment_ids, num_segments=None, sorted=False):
    return _segment("prod", data, segment_ids, num_segments)


@op("TopK", module="math")
def top_k(x, k, sorted=True):
    values, indices = torch.topk(tensor(x), k, dim=-1, largest=True, sorted=True)
    return values, indices


@op("InTopK", call=2, module="math")
def in_top_k(targets, predictions, k):
    predictions = float_tensor(predictions)
    targets = tensor(targets, device=predictions.device).long()
    target_scores = predictions.gather(-1, targets.unsqueeze(-1))
    better = (predictions > target_scores).sum(dim=-1)
    return better < k


@op("Logdet", module="math")
def logdet(x):
    return torch.logdet(float_tensor(x))


@op("ExtractSequences", module="math")
def extract_sequences(x, sequence_length, sequence_stride):
    return tensor(x).unfold(-1, sequence_length, sequence_stride)


def _complex(x):
    real, imag = float_tensors(*x)
    return torch.complex(real, imag)


def _parts(z):
    return torch.real(z), torch.imag(z)


@op("FFT", module="math")
def fft(x):
    return _parts(torch.fft.fft(_complex(x)))


@op("FFT2", module="math")
def fft2(x):
    return _parts(torch.fft.fft2(_complex(x)))


@op("IFFT2", module="math")
def ifft2(x):
    return _parts(torch.fft.ifft2(_complex(x)))


@op("RFFT", module="math")
def rfft(x, fft_length=None):
    return _parts(torch.fft.rfft(float_tensor(x), n=fft_length))


@op("IRFFT", module="math")
def irfft(x, fft_length=None):
    return torch.fft.irfft(_complex(x), n=fft_length)


def _window(window, length, device):
    if window is None:
        return None
    if isinstance(window, str):
        fn = {"hann": torch.hann_window, "hamming": torch.hamming_window}[window]
        return fn(length, periodic=True, device=device)
    return tensor(window, device=device)


@op("STFT", module="math")
def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    x = float_tensor(x)
    win = _window(window, sequence_length, x.device)
    if win is not None and fft_length > sequence_length:
        left = (fft_length - sequence_length) // 2
        win = torch.nn.functional.pad(win, (left, fft_length - sequence_length - left))
    z = torch.stft(x.reshape(-1, x.shape[-1]), fft_length, sequence_stride,
                   win_length=fft_length, window=win, center=center, pad_mode="reflect",
                   return_complex=True)
    z = z.transpose(-1, -2).reshape(tuple(x.shape[:-1]) + tuple(z.shape[-1:]) + tuple(z.shape[-2:-1]))
    return _parts(z)


@op("ISTFT", module="math")
def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann",
          center=True):
    z = _complex(x)
    win = _window(window, sequence_length, z.device)
    if win is not None and fft_length > sequence_length:
        left = (fft_length - sequence_length) // 2
        win = torch.nn.functional.pad(win, (left, fft_length - sequence_length - left))
    batch = z.shape[:-2]
    z = z.reshape((-1,) + tuple(z.shape[-2:])).transpose(-1, -2)
    out = torch.istft(z, fft_length, sequence_stride, win_length=fft_length, window=win,
                      center=center, length=length)
    return out.reshape(tuple(batch) + tuple(out.shape[-1:]))


@op("ViewAsComplex", module="math")
def view_as_complex(x):
    return torch.view_as_complex(float_tensor(x).contiguous())


@op("ViewAsReal", module="math")
def view_as_real(x):
    return torch.view_as_real(tensor(x))


@op("CDist", call=2, module="math")
def cdist(x, y):
    a, b = float_tensors(x, y)
    return torch.cdist(a, b)


_ = tensors
