"""Errors that ferlab reports to a user as one line (the CLI exits 2 on them)."""


class FerlabError(Exception):
    """A problem with the user's input: a bad file, genome, config or argument."""


class GenomeError(FerlabError):
    """A genome file that cannot be read or is not a valid CPPN."""


class NetError(FerlabError):
    """A dense-network file or architecture string that is not valid."""


class LimitError(FerlabError):
    """An input whose size is over one of the caps in ``ferlab.limits``."""
