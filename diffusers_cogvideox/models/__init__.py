"""CogVideoX transformer and 3D causal VAE."""
