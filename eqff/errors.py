"""The exceptions eqff raises. Each message names the file, frame, atom or key and says what to do."""


class EqffError(Exception):
    """Base class of every error eqff raises on purpose."""


class DataError(EqffError, ValueError):
    """A structure or a label in an input file is missing, malformed or non-finite."""


class UnknownElementError(DataError):
    """A structure holds an element the model was not built for."""


def element_names(numbers) -> str:
    """Atomic numbers as a chemist reads them: ``[79, 1]`` -> ``"Au, H"`` (sorted, unique)."""
    from ase.data import chemical_symbols

    return ", ".join(chemical_symbols[int(z)] if 0 < int(z) < len(chemical_symbols) else f"Z={int(z)}"
                     for z in sorted(set(int(z) for z in numbers)))


class ConfigError(EqffError, ValueError):
    """A configuration key or value is invalid."""


class ModelFileError(EqffError, ValueError):
    """A model or checkpoint file is missing, corrupt, foreign or from an incompatible eqff."""


class NeighborListError(EqffError, ValueError):
    """The neighbour list cannot be built for this cell (singular cell, overlapping atoms...)."""
