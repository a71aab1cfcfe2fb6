"""Measurements of a trained VAE: importance-sampled likelihood, posterior health, gradient statistics,
and exact quantities by enumeration on tiny latents."""
