"""The public query API: Api, Runs, Run, history, files, projects and sweeps."""

from runbase.api.api import Api
from runbase.api.files import File, Files
from runbase.api.history import HistoryScan
from runbase.api.projects import Project, Projects
from runbase.api.runs import Run, Runs, User
from runbase.api.summary import Summary
from runbase.api.sweeps import Sweep

__all__ = [
    "Api",
    "File",
    "Files",
    "HistoryScan",
    "Project",
    "Projects",
    "Run",
    "Runs",
    "Summary",
    "Sweep",
    "User",
]
