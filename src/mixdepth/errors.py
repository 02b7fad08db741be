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
