"""What goes wrong when pretrained perceptual weights are needed: one exception for every network here."""


class WeightsUnavailable(RuntimeError):
    """A distance needs pretrained weights that are neither on disk nor downloadable (or a file that is not them).

    The message names the file, where it was looked for and how to provide it.
    """
