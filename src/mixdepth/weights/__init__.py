"""Bundled weights: default.safetensors, the model `mixdepth predict` uses when given none
(see docs/model-card.md for how it was trained and how it scores)."""
