"""The progress bar the data tools show on a terminal (tqdm; silent when not a terminal)."""
from tqdm import tqdm


def progress(total, desc, enabled=None):
    """A tqdm bar of ``total`` items; ``enabled`` None shows it only on a terminal."""
    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled is None
                else not enabled, leave=False)
