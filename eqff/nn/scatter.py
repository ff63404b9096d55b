"""Sum aggregation, the only reduction message passing needs (no torch_scatter dependency)."""
import torch
from torch import Tensor


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """out[k] = sum of src[e] over e with index[e] == k (along the first dimension)."""
    out = torch.zeros((dim_size,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return out.index_add(0, index, src)
