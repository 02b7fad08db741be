"""The one exception family users catch."""


class MixdepthError(Exception):
    """A problem with the user's input (a file, a field, an option), stated so it can be fixed.

    Messages name the file or field and what is wrong with it. The CLI prints them without a
    traceback and exits non-zero.
    """


class FileFormatError(MixdepthError, ValueError):
    """A file exists but its content is not what its format promises."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(MixdepthError, ValueError):
    """A configuration key is unknown, missing or of the wrong type."""


class AlignmentError(MixdepthError, ValueError):
    """Depth hints that cannot be used, or a prediction that cannot be aligned to them.

    `index` is the offending hint's index (row of the (K, 3) hints) when one hint is at fault.
    """

    def __init__(self, message: str, index: int | None = None):
        self.index = index
        super().__init__(message)
