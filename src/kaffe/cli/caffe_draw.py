"""``kaffe draw_net NET.prototxt OUT.png [--rankdir LR] [--phase TRAIN|TEST|ALL]
[--display_lrm]``: Caffe's ``python/draw_net.py`` (the picture of a net prototxt, by graphviz).

The output format comes from the file extension (png, svg, pdf, ...; ``.dot`` writes the
graphviz source). Exit status 0 on success, 1 when the net cannot be read or drawn.
"""
import sys

ARGUMENTS = [
    ("input_net_proto_file", {"help": "the net prototxt to draw"}),
    ("output_image_file", {"help": "the image to write (format from its extension)"}),
    ("--rankdir", {"default": "LR", "choices": ["LR", "TB", "BT", "RL"],
                   "help": "graph direction: LR (default), TB, BT or RL"}),
    ("--phase", {"default": "ALL", "type": str.upper, "choices": ["TRAIN", "TEST", "ALL"],
                 "help": "draw the layers of this phase only (default ALL)"}),
    ("--display_lrm", {"action": "store_true",
                       "help": "show the learning-rate multipliers of learning layers"}),
]


def command(args):
    from kaffe.caffe import draw
    from kaffe.caffe.prototxt import CaffeFormatError
    print(f"Drawing net to {args.output_image_file}")
    try:
        draw.draw_net_to_file(args.input_net_proto_file, args.output_image_file, args.rankdir,
                              None if args.phase == "ALL" else args.phase, args.display_lrm)
    except (CaffeFormatError, ValueError, OSError, RuntimeError, ImportError) as error:
        print(f"kaffe draw_net: {error}", file=sys.stderr)
        return 1
    return 0
