"""The only part of llmapp that imports streamlit.

Pages call these helpers; the helpers call the rest of llmapp and render.
"""

from llmapp.ui.chat import chat_prompt, render_chat, render_message, respond
from llmapp.ui.controls import generation_controls
from llmapp.ui.navigation import menu
from llmapp.ui.settings import read_secrets, sidebar
from llmapp.ui.memory import (add_user, awaiting, clear_button, conversation_picker,
                              conversation_store, export_buttons, memory_controls, memory_panel,
                              open_conversation)
from llmapp.ui.rag import (answer, answer_mode_control, collection_manager, ingest_panel,
                           knowledge_base, knowledge_base_quiet,
                           render_rag_chat, render_sources, retrieval_controls)
from llmapp.ui.agent import (agent_limits, agent_reply, manual_console, render_agent_chat,
                             tool_calling_notice, tool_choice_control, tool_picker)
from llmapp.ui.chains import chain_panel, structured_panel, technique_picker, template_panel
from llmapp.ui.evaluation import (compare_runs, judge_picker, judge_vs_people, question_set,
                                  run_panel, run_rows)
from llmapp.ui.safety import (phrase_editor, safety_figures, safety_notice, topic_editor,
                              topic_vs_prompt, try_text)
from llmapp.ui.tuning import base_vs_tuned, dataset_panel, train_panel, training_notice
from llmapp.ui.tuning import models_panel as tuned_models
from llmapp.ui.status import (context_window, local_model_notice, provider_status, roadmap,
                               storage_notice)

__all__ = [
    "chat_prompt", "menu", "clear_button",
    "agent_limits", "agent_reply", "knowledge_base_quiet", "manual_console", "render_agent_chat",
    "tool_calling_notice", "tool_choice_control", "tool_picker",
    "chain_panel", "structured_panel", "technique_picker", "template_panel",
    "answer", "collection_manager", "ingest_panel", "knowledge_base", "render_rag_chat",
    "render_sources", "retrieval_controls", "answer_mode_control",
    "add_user", "awaiting", "context_window", "conversation_picker", "conversation_store", "export_buttons",
    "open_conversation",
    "memory_controls", "memory_panel",
    "generation_controls", "local_model_notice", "provider_status",
    "read_secrets",
    "render_chat", "render_message", "respond", "roadmap", "sidebar", "storage_notice",
    "phrase_editor", "safety_figures", "safety_notice", "topic_editor", "topic_vs_prompt",
    "try_text",
    "base_vs_tuned", "dataset_panel", "train_panel", "training_notice", "tuned_models",
    "compare_runs", "judge_picker", "judge_vs_people", "question_set", "run_panel", "run_rows",
]
