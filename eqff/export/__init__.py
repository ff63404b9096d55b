"""Self-contained exports: TorchScript (the model, its own neighbour list, its unit handling and
its metadata in one file that ``torch.jit.load`` runs without eqff, e3nn or vesin installed) and
AOTInductor ``.pt2`` packages (``eqff.export.aoti``: no TorchScript, for torch >= 2.10; the
caller gives the neighbour list). ``is_exported``, ``read_metadata`` and ``load_exported`` take
either."""
from eqff.export.aoti import PT2_FORMAT, Pt2Potential, export_pt2, is_pt2, load_pt2
from eqff.export.torchscript import (
    EXPORT_FORMAT,
    METADATA_FILE,
    ExportedPotential,
    export_checkpoint,
    export_potential,
    is_exported,
    load_exported,
    read_metadata,
)

__all__ = ["EXPORT_FORMAT", "METADATA_FILE", "PT2_FORMAT", "ExportedPotential", "Pt2Potential", "export_checkpoint",
           "export_potential", "export_pt2", "is_exported", "is_pt2", "load_exported", "load_pt2", "read_metadata"]
