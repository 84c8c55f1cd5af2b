"""Caffe's image list files: one ``path label`` per line (``convert_imageset``, ``ImageData``).

As in Caffe the label is the text after the LAST space, so paths may contain spaces. Blank lines
are skipped; a line without a space or with a label that is not an integer raises
:class:`DataSourceError` naming the file and line (Caffe would silently read label 0).
"""
import os

from kaffe.data.errors import DataSourceError, missing


def read_image_list(source):
    """``[(path, label, line_number), ...]`` from the list file ``source``."""
    source = os.fspath(source)
    if not os.path.isfile(source):
        raise missing(source, "Image list file", " It should hold one 'path label' per line.")
    entries = []
    with open(source, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            path, space, label = line.rpartition(" ")
            if not space or not path:
                raise DataSourceError(f"{source}:{number}: expected 'path label' (the label "
                                      f"after the last space), got {line!r}.")
            try:
                value = int(label)
            except ValueError:
                raise DataSourceError(f"{source}:{number}: the label {label!r} is not an "
                                      f"integer (line {line!r}).") from None
            entries.append((path, value, number))
    if not entries:
        raise DataSourceError(f"Image list file {source!r} is empty; it needs 'path label' "
                              f"lines.")
    return entries


def check_images_exist(entries, root_folder, source):
    """The entries whose image file is missing under ``root_folder`` (Caffe joins by plain
    concatenation: ``root_folder + path``), as ``(path, label, line)`` tuples."""
    return [e for e in entries if not os.path.isfile(root_folder + e[0])]


def missing_images_error(absent, root_folder, source, hint):
    shown = "; ".join(f"line {n}: {root_folder + p!r}" for p, _, n in absent[:5])
    more = f" (and {len(absent) - 5} more)" if len(absent) > 5 else ""
    return DataSourceError(f"{source}: {len(absent)} listed image(s) not found: {shown}{more}. "
                           f"Paths are root_folder + the listed path (root_folder "
                           f"{root_folder!r}). {hint}")
