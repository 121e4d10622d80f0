"""llmapp as a service: an OpenAI-compatible chat completions API
(``llmapp serve``).

- :mod:`llmapp.api.schemas`: OpenAI's request, response, chunk and error shapes.
- :mod:`llmapp.api.service`: requests to library calls (chat, RAG, agent).
- :mod:`llmapp.api.app`: the FastAPI routes, admission and streaming.

Like the pages and the CLI, it is a view: it calls the library and holds no
logic of its own.
"""
