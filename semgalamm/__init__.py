"""semgalamm: generalized additive latent and mixed models in a lavaan-like syntax."""
