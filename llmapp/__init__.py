"""llmapp: the staged roadmap of an LLM application, as a library.

The Streamlit pages, the ``llmapp`` CLI, notebooks and the tests all use this
package. Only :mod:`llmapp.ui` imports streamlit.
"""

__version__ = "0.1.0"
