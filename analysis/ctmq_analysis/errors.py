"""The one exception the analysis raises for bad input."""


class RunDirError(Exception):
    """A file of a run directory is missing or malformed.

    str(e) is "PATH: what is wrong[; what to do]", so the user sees which file
    to fix or regenerate.
    """

    def __init__(self, path, message):
        super().__init__("%s: %s" % (path, message))
        self.path = path
