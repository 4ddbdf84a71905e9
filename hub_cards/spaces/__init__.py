"""Gradio Spaces: the VisionReward scorer and the CogVideoX generator with reward-ranked best-of-N."""
