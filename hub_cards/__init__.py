"""Model cards, dataset cards and Gradio Spaces for CogVideoX, VisionReward and MPO.

- :mod:`~hub_cards.model_cards`: ``render_mpo_model_card`` (CogVideoX MPO fine-tunes, with ``model-index``) and
  ``render_vision_reward_model_card`` (checklist, weights, accuracy);
- :mod:`~hub_cards.dataset_cards`: VisionRewardDB layouts, scored samples, MPO pairs, converted public pairs;
- :mod:`~hub_cards.space_cards`: Space READMEs; :mod:`~hub_cards.spaces`: the two Gradio apps;
- :mod:`~hub_cards.validation`: the metadata checks every renderer runs, offline.
"""
