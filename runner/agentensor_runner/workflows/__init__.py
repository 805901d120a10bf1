"""Workflows: built-in templates and user entrypoints, all compiled LangGraph graphs."""

from ._base import Feedback, Workflow, default_attribution, render
from ._loader import load_workflow

__all__ = ["Feedback", "Workflow", "default_attribution", "load_workflow", "render"]
