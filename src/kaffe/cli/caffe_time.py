"""``kaffe time``: Caffe's ``caffe time`` benchmark of a net prototxt.

``kaffe time -model net.prototxt [-iterations 50] [-weights W] [-phase TRAIN] [-level 0]
[-stage a,b] [-gpu 0]`` (``--model=...`` and ``-model=...`` spellings too) builds the net (in
TRAIN phase, as ``caffe time`` does, unless ``-phase`` says otherwise), runs it and prints the
per-layer forward/backward averages and the totals in ``caffe time``'s format. ``-gpu N`` times
the net on CUDA device N (each layer's time taken after a device synchronize); without CUDA it
says so and times the CPU.
"""
import sys


def _both(name, **options):
    """The ``-name`` and ``--name`` spellings of one gflags-style option (same dest)."""
    return [(f"-{name}", dict(options, dest=name)), (f"--{name}", dict(options, dest=name))]


ARGUMENTS = (_both("model", help="the net prototxt to time") +
             _both("iterations", type=int, default=50, help="number of iterations (50)") +
             _both("weights", help="optional .caffemodel to load first") +
             _both("phase", default="TRAIN", help="TRAIN (default, as caffe time) or TEST") +
             _both("level", type=int, default=0, help="the net state's level") +
             _both("stage", default="", help="comma-separated net state stages") +
             _both("gpu", help="CUDA device id to time on (CPU when torch has no CUDA)"))


def command(args):
    from kaffe import caffe
    from kaffe.caffe.timing import time_net
    if not args.model:
        print("kaffe time: give the net to time with -model net.prototxt", file=sys.stderr)
        return 2
    from kaffe.caffe.device import computing_on, describe
    from kaffe.cli.caffe_train import parse_gpus, select_device
    stages = [s for s in (args.stage or "").split(",") if s]
    try:
        gpus = parse_gpus(args.gpu)
        if len(gpus) > 1:
            raise ValueError(f"-gpu {args.gpu}: kaffe time times one device; give one id.")
        device = select_device(gpus)
        with computing_on(device):
            net = caffe.Net(args.model, args.phase, weights=args.weights, level=args.level,
                            stages=stages)
        report = time_net(net, args.iterations)
    except (ValueError, OSError) as e:
        print(f"kaffe time: {e}", file=sys.stderr)
        return 1
    print(describe(device))
    for line in report.lines():
        print(line)
    return 0
