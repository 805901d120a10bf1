"""Workflows: built-in templates and user entrypoints, all compiled LangGraph graphs."""

from ._base import Attribution, Feedback, Workflow, default_attribution, render
from ._loader import load_workflow

__all__ = ["Attribution", "Feedback", "Workflow", "default_attribution", "load_workflow", "render"]
