"""Build, validate, convert and publish preference datasets (VisionRewardDB layouts, scored samples, MPO pairs)."""
