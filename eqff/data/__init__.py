"""Reading DFT frames, neighbour lists and batching."""
from eqff.data.frames import Frame, frames_hash, read_frames, validate_frame
from eqff.data.graph import collate, frame_to_graph, frames_to_batch
from eqff.data.md17 import read_md17_npz
from eqff.data.neighbors import neighbor_list

__all__ = ["Frame", "collate", "frame_to_graph", "frames_hash", "frames_to_batch", "neighbor_list",
           "read_frames", "read_md17_npz", "validate_frame"]
