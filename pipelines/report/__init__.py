"""The KPI report: published marts in, one self-contained HTML page out.

``data`` holds the queries of the foundation's marts, ``metrics`` the pure computations, ``charts``
the SVG charts and ``render`` the template and ``build_report``. ``sections`` lists the sections
over model families' marts (``forecasting``: its queries and template), each omitted with a note
where its marts are not published.
"""

from pipelines.report.data import ReportError
from pipelines.report.render import build_report

__all__ = ["ReportError", "build_report"]
