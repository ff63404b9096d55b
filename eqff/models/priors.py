"""Physical priors added to the learned energy.

ZBL (Ziegler-Biersack-Littmark) universal screened nuclear repulsion keeps atoms from
collapsing into each other in regions the training data never visited (high-temperature MD,
collisions): the learned model alone is unconstrained there and may even attract. The pair
term is switched off smoothly at the sum of the covalent radii, so near equilibrium the
network still learns the whole interaction.

    E_ij = (Z_i Z_j e^2 / 4 pi eps0 r) phi(r / a) u(r / r_ij^cov),  a = 0.46850 / (Z_i^0.23 + Z_j^0.23) Å
"""
from typing import List

import ase.data
import torch
from torch import Tensor, nn

from eqff.nn.radial import PolynomialEnvelope
from eqff.nn.scatter import scatter_sum

COULOMB_EV_A = 14.399645478425668  # e^2 / (4 pi eps0) in eV Å
_ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
_ZBL_D = (3.19980, 0.94229, 0.40290, 0.20162)


class ZBLRepulsion(nn.Module):
    def __init__(self, atomic_numbers: List[int], p: int = 6):
        super().__init__()
        # derived from the config, so not saved in checkpoints
        self.register_buffer("z", torch.tensor(atomic_numbers, dtype=torch.get_default_dtype()), persistent=False)
        radii = [float(ase.data.covalent_radii[z]) for z in atomic_numbers]
        self.register_buffer("covalent_radius", torch.tensor(radii, dtype=torch.get_default_dtype()), persistent=False)
        self.register_buffer("coefficients", torch.tensor(_ZBL_C, dtype=torch.get_default_dtype()), persistent=False)
        self.register_buffer("exponents", torch.tensor(_ZBL_D, dtype=torch.get_default_dtype()), persistent=False)
        self.coulomb = COULOMB_EV_A
        self.envelope = PolynomialEnvelope(cutoff=1.0, p=p)  # of r / r_cov, per pair

    def forward(self, species: Tensor, edge_index: Tensor, edge_vector: Tensor) -> Tensor:
        """Per-atom repulsion energies (half of each pair term to each atom; the list is full)."""
        receivers, senders = edge_index[0], edge_index[1]
        r = torch.linalg.norm(edge_vector, dim=-1)
        zi, zj = self.z[species[receivers]], self.z[species[senders]]
        a = 0.46850 / (torch.pow(zi, 0.23) + torch.pow(zj, 0.23))
        x = r / a
        phi = (self.coefficients * torch.exp(-self.exponents * x.unsqueeze(-1))).sum(dim=-1)
        r_max = self.covalent_radius[species[receivers]] + self.covalent_radius[species[senders]]
        pair = self.coulomb * zi * zj / r * phi * self.envelope(r / r_max)
        return 0.5 * scatter_sum(pair, receivers, species.shape[0])
