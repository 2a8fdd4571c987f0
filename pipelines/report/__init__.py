"""The KPI report: published marts in, one self-contained HTML page out.

``data`` holds every query, ``metrics`` the pure computations, ``charts`` the SVG charts and
``render`` the template and ``build_report``.
"""

from pipelines.report.data import ReportError
from pipelines.report.render import build_report

__all__ = ["ReportError", "build_report"]
