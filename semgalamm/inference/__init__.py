"""Inference on a fitted GALAMM: predictions, simulation, parametric bootstrap and
profile-likelihood confidence intervals (lme4's predict, simulate, bootMer, confint)."""
