"""Model cards, dataset cards and Gradio Spaces for CogVideoX, VisionReward and MPO."""
