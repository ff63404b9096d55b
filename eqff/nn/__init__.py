"""Building blocks shared by every model: scatter, geometry, radial bases, MLPs."""
