"""Evaluation shared by the diffusion trainers (SFT and MPO) on ``transformers.Trainer``."""

from __future__ import annotations

import torch


class SeededEvaluationMixin:
    """Loss-only prediction steps, and an evaluation whose noise and timesteps repeat from one evaluation to the
    next (a generator seeded from ``args.eval_seed`` and the process index, read by the trainer's ``compute_loss``
    through ``self._eval_generator``), so held-out losses are comparable across a run.

    The trainer collects evaluation metrics as lists in ``self._metrics["eval"]``; their means are reported under
    ``{metric_key_prefix}_{name}`` for the names :meth:`reports_eval_metric` accepts.
    """

    _eval_generator: torch.Generator | None = None

    def reports_eval_metric(self, name: str) -> bool:
        return True

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._eval_generator = torch.Generator().manual_seed(self.args.eval_seed + self.accelerator.process_index)
        self._metrics["eval"].clear()
        try:
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
        finally:
            self._eval_generator = None
        for name, values in self._metrics["eval"].items():
            if self.reports_eval_metric(name):
                output.metrics[f"{metric_key_prefix}_{name}"] = sum(values) / len(values)
        self._metrics["eval"].clear()
        return output
