"""cuequivariance (NVIDIA's kernels for e3nn-style products, carried as .whl/gpu_cueq.tar.xz)
against eqff's own products, at the shapes of water_12288 (553k edges, 12,288 atoms), float32,
forward + backward to every input (what forces need):

* SEGNN's depthwise ("uvu") tensor product of sender features with the edge harmonics, per-edge
  weights: e3nn's TensorProduct, eqff's FusedDepthwiseProduct (what SEGNN runs) and
  ``cuet.ChannelWiseTensorProduct`` (irreps in e3nn's convention, O3_e3nn). Its CUDA kernel
  ("uniform_1d") needs every irrep block of one multiplicity, which SEGNN's 64x0e+32x1o+16x2e
  is not (cue then runs its "naive" torch method); the uniform 32x0e+32x1o+32x2e runs the
  kernel. cue orders the weights by output block: permuted from e3nn's, then the outputs are
  compared.
* ace's many-body product basis (correlation 3, 64 channels, A to l = 3, out 0e + 1o) against
  ``cuet.SymmetricContraction`` (MACE's operation) on the same shapes: timing only, the two
  parametrise their weights differently.
"""
from typing import Dict, List

import torch

from common import Run, median_seconds, relative_difference


def kernel_method(device: torch.device):
    """cue's choice on a GPU (its CUDA kernel where the shapes allow); its torch method on a CPU."""
    return None if device.type == "cuda" else "naive"


def forward_backward(function, inputs: List[torch.Tensor]):
    """A call of ``function(*inputs)`` and its backward to every input."""
    def call():
        out = function(*inputs)
        torch.autograd.grad(out, inputs, grad_outputs=torch.ones_like(out))
        return out
    return call


def weights_in_cue_order(product) -> torch.Tensor:
    """Indices that reorder an e3nn 'uvu' product's weights into cue's order (by output block)."""
    offsets, start = [], 0
    for ins in product.instructions:
        offsets.append((ins.i_out, start, ins.path_shape[0]))
        start += ins.path_shape[0]
    return torch.cat([torch.arange(s, s + n) for _, s, n in sorted(offsets)])


def depthwise(suite: Run, irreps: str, edges: int) -> Dict:
    import cuequivariance as cue
    import cuequivariance_torch as cuet
    from cuequivariance.group_theory.experimental.e3nn import O3_e3nn
    from e3nn import o3

    from eqff.models.segnn import FusedDepthwiseProduct, depthwise_tensor_product

    device, dtype = suite.device, torch.float32
    irreps_in, irreps_sh = o3.Irreps(irreps), o3.Irreps.spherical_harmonics(2)
    product, _ = depthwise_tensor_product(irreps_in, irreps_sh, irreps_in)
    product = product.to(device=device, dtype=dtype)
    fused = FusedDepthwiseProduct(product).to(device=device, dtype=dtype)
    cue_product = cuet.ChannelWiseTensorProduct(
        cue.Irreps(O3_e3nn, str(irreps_in)), cue.Irreps(O3_e3nn, str(irreps_sh)),
        filter_irreps_out=[O3_e3nn(ir.l, ir.p) for _, ir in irreps_in], shared_weights=False,
        internal_weights=False, layout=cue.mul_ir, device=device, dtype=dtype, method=kernel_method(device))
    generator = torch.Generator(device="cpu").manual_seed(0)
    x1 = torch.randn(edges, irreps_in.dim, generator=generator).to(device, dtype).requires_grad_(True)
    x2 = torch.randn(edges, irreps_sh.dim, generator=generator).to(device, dtype).requires_grad_(True)
    w = torch.randn(edges, product.weight_numel, generator=generator).to(device, dtype).requires_grad_(True)
    # the same weights in cue's order (a model using cue would have its radial MLP emit them so)
    w_cue = w.detach()[:, weights_in_cue_order(product).to(device)].requires_grad_(True)
    reference = product(x1, x2, w)
    row = {"operation": "depthwise tensor product (segnn)", "irreps": irreps, "rows": edges,
           "cue_method": getattr(cue_product, "method", "?"),
           "cue_vs_e3nn_rel": relative_difference(cue_product(x1, x2, w_cue), reference),
           "fused_vs_e3nn_rel": relative_difference(fused(x1, x2, w), reference)}
    del reference
    repeats, warmup = (1, 1) if suite.quick else (5, 2)
    for name, function, weights in (("e3nn", product, w), ("eqff_fused", fused, w), ("cue", cue_product, w_cue)):
        row[f"{name}_ms"] = 1000 * median_seconds(forward_backward(function, [x1, x2, weights]), device, repeats,
                                                  warmup)
    return row


def symmetric_contraction(suite: Run, atoms: int) -> Dict:
    import cuequivariance as cue
    import cuequivariance_torch as cuet
    from cuequivariance.group_theory.experimental.e3nn import O3_e3nn

    from eqff.models.ace import ProductBasis

    device, dtype, channels, elements = suite.device, torch.float32, 64, 2
    ours = ProductBasis(channels, 3, [0, 1], 3, elements).to(device=device, dtype=dtype)
    theirs = cuet.SymmetricContraction(
        cue.Irreps(O3_e3nn, f"{channels}x0e+{channels}x1o+{channels}x2e+{channels}x3o"),
        cue.Irreps(O3_e3nn, f"{channels}x0e+{channels}x1o"), contraction_degree=3, num_elements=elements,
        layout_in=cue.ir_mul, layout_out=cue.ir_mul, original_mace=True, device=device, dtype=dtype,
        method=kernel_method(device))
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(atoms, 16, channels, generator=generator).to(device, dtype).requires_grad_(True)
    species = torch.randint(0, elements, (atoms,), generator=generator).to(device)
    repeats, warmup = (1, 1) if suite.quick else (5, 2)
    row = {"operation": "symmetric contraction (ace products)", "irreps": f"{channels}x(0e+1o+2e+3o) -> 0e+1o",
           "rows": atoms, "cue_method": getattr(theirs, "method", "?")}
    row["eqff_ms"] = 1000 * median_seconds(forward_backward(lambda x: ours(x, species), [a]), device, repeats, warmup)
    flat = a.detach().reshape(atoms, -1).requires_grad_(True)
    row["cue_ms"] = 1000 * median_seconds(forward_backward(lambda x: theirs(x, species.int()), [flat]), device,
                                          repeats, warmup)
    return row


def run(suite: Run):
    try:
        import cuequivariance_torch  # noqa: F401
    except Exception as error:  # not carried, or its kernels do not load
        return [{"skipped": f"cuequivariance_torch does not import: {type(error).__name__}: {str(error)[:300]}"}]
    edges, atoms = (200, 50) if suite.quick else (553_000, 12_288)
    rows = []
    cases = [lambda: depthwise(suite, "64x0e+32x1o+16x2e", edges), lambda: depthwise(suite, "32x0e+32x1o+32x2e", edges),
             lambda: symmetric_contraction(suite, atoms)]
    for case in cases:
        if not suite.has_time(30 if not suite.quick else 2):
            rows.append({"skipped": "time budget"})
            continue
        try:
            rows.append(case())
        except Exception as error:  # a kernel that does not run here is a result, not a crash of the suite
            rows.append({"error": f"{type(error).__name__}: {str(error)[:400]}"})
        print(f"  cue: {rows[-1]}", flush=True)
    return rows
