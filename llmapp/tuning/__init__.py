"""Stage 7, learn from use: datasets, their checks, LoRA training on the CPU,
tuned models, and before/after.

- :mod:`llmapp.tuning.validate`: a chat JSONL dataset checked before anything
  trains (OpenAI's cookbook checks, duplicates, length against the window).
- :mod:`llmapp.tuning.datasets`: examples from feedback, stored
  conversations, files, and distillation from a teacher filtered by a judge.
- :mod:`llmapp.tuning.train`: LoRA on the bundled model and its GGUF adapter.
- :mod:`llmapp.tuning.jobs` and :mod:`llmapp.tuning.worker`: a training run
  as a subprocess, its progress, cancel.
- :mod:`llmapp.tuning.models`: the registered tuned models.
- :mod:`llmapp.tuning.compare`: the base and a tuned model on held-out examples.
"""
