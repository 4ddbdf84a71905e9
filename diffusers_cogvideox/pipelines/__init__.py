"""Text-, image- and video-to-video pipelines."""
