"""Build, validate, convert and publish preference datasets (VisionRewardDB layouts, scored samples, MPO pairs).

Modules, one stage each (all also reachable from the ``vr-datasets`` command line):

- :mod:`~datasets_scripts.visionrewarddb`: media folder + annotations -> validated, split VisionRewardDB Parquet;
- :mod:`~datasets_scripts.generate_and_score`: prompts -> samples -> VisionReward scores (sharded, resumable);
- :mod:`~datasets_scripts.mpo_pairs`: scored samples -> MPO preference pairs (the MPO trainer's input);
- :mod:`~datasets_scripts.converters`: Pick-a-Pic v2 / HPDv2 / ImageRewardDB records -> common pairs;
- :mod:`~datasets_scripts.publish`: ``push_to_hub`` of a dataset folder with its card (and a capture for dry runs);
- :mod:`~datasets_scripts.quickstart`: the whole loop, generate to MPO to report, in one command (``vr-quickstart``).
"""
