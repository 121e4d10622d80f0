"""Stage 7, learn from use: fine-tuning datasets and their checks.

- :mod:`llmapp.tuning.validate`: a chat JSONL dataset checked before anything
  trains (OpenAI's cookbook checks, duplicates, length against the window).
"""
