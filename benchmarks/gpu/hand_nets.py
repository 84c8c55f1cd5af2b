"""The timing nets written by hand in plain ``torch.nn``: what a PyTorch user would write for
the deploy prototxts of ``shared/reference/timing`` (same layer shapes, NCHW, Caffe's ceil-mode
pooling, LRN where Caffe has it). The peer of ``kaffe time`` for "same net" speed."""
import torch
from torch import nn


def _pool(kernel, stride, pad=0):
    return nn.MaxPool2d(kernel, stride, pad, ceil_mode=True)


def _lrn():
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)


def caffenet():
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), relu(), _pool(3, 2), _lrn(),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), _pool(3, 2), _lrn(),
        nn.Conv2d(256, 384, 3, padding=1), relu(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), _pool(3, 2), nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), relu(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), relu(), nn.Dropout(0.5), nn.Linear(4096, 1000), nn.Softmax(1))


def vgg16():
    layers, channels = [], 3
    for width, repeat in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeat):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        layers.append(_pool(2, 2))
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 1000), nn.Softmax(1))


class Inception(nn.Module):
    """GoogLeNet's module: 1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1, concatenated on channels."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, cp):
        super().__init__()
        conv = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2),  # noqa: E731
                                             nn.ReLU(inplace=True))
        self.b1 = conv(cin, c1, 1)
        self.b3 = nn.Sequential(conv(cin, c3r, 1), conv(c3r, c3, 3))
        self.b5 = nn.Sequential(conv(cin, c5r, 1), conv(c5r, c5, 5))
        self.bp = nn.Sequential(_pool(3, 1, 1), conv(cin, cp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


# GoogLeNet's inception widths (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj); None: pool
_GOOGLENET = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), None,
              (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
              (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
              (256, 160, 320, 32, 128, 128), None,
              (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


def googlenet():
    layers = [nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(inplace=True), _pool(3, 2), _lrn(),
              nn.Conv2d(64, 64, 1), nn.ReLU(inplace=True), nn.Conv2d(64, 192, 3, padding=1),
              nn.ReLU(inplace=True), _lrn(), _pool(3, 2)]
    channels = 192
    for widths in _GOOGLENET:
        if widths is None:
            layers.append(_pool(3, 2))
            continue
        layers.append(Inception(channels, *widths))
        channels = widths[0] + widths[2] + widths[4] + widths[5]
    return nn.Sequential(*layers, nn.AvgPool2d(7, 1), nn.Flatten(), nn.Dropout(0.4),
                         nn.Linear(channels, 1000), nn.Softmax(1))


class Bottleneck(nn.Module):
    """Caffe ResNet's block: the stride sits on the first 1x1 (branch2a), BN + Scale after
    every bias-free convolution, a projection (branch1) on the first block of a stage."""

    def __init__(self, cin, width, stride, project):
        super().__init__()
        cout = 4 * width
        unit = lambda i, o, k, s: [nn.Conv2d(i, o, k, s, k // 2, bias=False),  # noqa: E731
                                   nn.BatchNorm2d(o)]
        self.branch2 = nn.Sequential(*unit(cin, width, 1, stride), nn.ReLU(inplace=True),
                                     *unit(width, width, 3, 1), nn.ReLU(inplace=True),
                                     *unit(width, cout, 1, 1))
        self.branch1 = nn.Sequential(*unit(cin, cout, 1, stride)) if project else nn.Identity()

    def forward(self, x):
        return torch.relu(self.branch1(x) + self.branch2(x))


def resnet50():
    layers = [nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True), _pool(3, 2)]
    channels = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(channels, width, stride if i == 0 else 1, i == 0))
            channels = 4 * width
    return nn.Sequential(*layers, nn.AvgPool2d(7, 1), nn.Flatten(), nn.Linear(channels, 1000),
                         nn.Softmax(1))


NETS = {"caffenet": caffenet, "googlenet": googlenet, "vgg16": vgg16, "resnet50": resnet50}


def conv_fc_size(model):
    """Numbers in the convolution and fully connected weights (and biases): the shapes a
    Caffe net and its hand-written twin must agree on."""
    return sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters())
